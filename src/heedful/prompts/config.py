"""Which instructions prompts are built from: the ``prompts`` section of a command's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class PromptConfig:
    """Instructions, their selection and alterations, and demonstrations."""

    instructions: str = "designer"
    """Comma list: designer, heedful, nonsense, superni:ENCODING, or collection .jsonl files."""
    kinds: list[str] | None = None
    """Keep only instructions of these kinds (e.g. [observed, designer])."""
    collections: list[str] | None = None
    """Keep only instructions of these collections."""
    perturb: list[str] | None = None
    """Perturbations, each evaluated as its own instruction kind: none, simplified, delusive, negated, nonsense,
    incorrect, closest, drop_words, shuffle_words, char_typos, paraphrase:FILE."""
    label_spaces: str | None = None
    """Label-space file (SuperNI label_space.json format) for perturbations and baselines."""
    shots: int = 0
    """Demonstrations per prompt, drawn from a disjoint pool."""
    on_unfit: Literal["skip", "error"] = "skip"
    """An instruction that does not fit a task's examples: skip it for that task (warned, recorded) or stop."""
