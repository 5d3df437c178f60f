"""What prompt rendering produces: the exact text a model sees and what it is scored on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderedExample:
    """A prompt ready for a model.

    ``choices`` are the candidate answer strings for rank classification (option texts,
    letters, or mapped labels, as the instruction dictates), ``gold`` indexes them.
    ``references`` are the accepted answers for generation scoring.
    """

    task: str
    instance_id: str
    prompt: str
    references: tuple[str, ...]
    choices: tuple[str, ...] | None = None
    gold: int | None = None
