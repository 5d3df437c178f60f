"""Tokenised choice requests and the regrouping of per-option scores, shared by backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heedful.models.types import ChoiceScores


@dataclass(frozen=True)
class EncodedRequest:
    """A choice request after tokenisation: context ids and each continuation's ids."""

    ctx: list[int]
    conts: list[list[int]]
    texts: tuple[str, ...]

    @property
    def length(self) -> int:
        return len(self.ctx) + max(len(c) for c in self.conts)

    def packed_length(self, shared: int = 0) -> int:
        """Tokens this request puts in a packed row past a ``shared``-token prefix: prompt, then option tails."""
        return len(self.ctx) - shared + sum(len(c) - 1 for c in self.conts)


def collect_scores(
    batch: Sequence[EncodedRequest], rows: Sequence[tuple[int, int]], logliks: Sequence[float], greedy: Sequence[bool]
) -> list[ChoiceScores]:
    """Regroup flat per-option results (row r = option ``rows[r][1]`` of request ``rows[r][0]``)."""
    per_req: list[list[int]] = [[] for _ in batch]
    for r, (b, _) in enumerate(rows):
        per_req[b].append(r)
    return [
        ChoiceScores(
            logliks=tuple(float(logliks[r]) for r in idx),
            n_tokens=tuple(len(c) for c in w.conts),
            is_greedy=tuple(bool(greedy[r]) for r in idx),
            n_chars=tuple(len(t) for t in w.texts),
        )
        for w, idx in zip(batch, per_req)
    ]
