"""Where a generated answer ends: at the first stop string after its first non-space character.

Instruct models often begin an answer with a newline after ``Output:``; a stop string
such as ``"\\n"`` must end the answer, not precede it. One rule for every backend: the
local ones check it on tokens as they arrive, an API backend on the text it gets back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The answer: text from its first non-space character to the earliest stop string after it."""
    start = len(text) - len(text.lstrip())
    cut = min((pos for pos in (text.find(s, start) for s in stops) if pos >= 0), default=len(text))
    return text[:cut]


def answers_have_stop(tokenizer: Any, answers: Sequence[Sequence[int]], stops: Sequence[str]) -> list[bool]:
    """For each answer's tokens: whether a stop string appears after its first non-space character."""
    texts = tokenizer.batch_decode(answers, skip_special_tokens=True)
    return [any(stop in text.lstrip() for stop in stops) for text in texts]
