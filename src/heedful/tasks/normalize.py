"""Answers' normal form for comparing them, as SuperNI's metrics compare them.

SQuAD v1.1's normaliser *without* article removal, as Tk-Instruct's ``compute_metrics.py``:
lowercase, drop ASCII punctuation (``string.punctuation``), collapse whitespace. Scoring
(:mod:`heedful.evaluate.metrics`) and label perturbations both compare answers this way.
"""

from __future__ import annotations

import string

_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, remove ASCII punctuation and collapse whitespace (articles are kept)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    return " ".join(s.split())
