"""Per-example records arranged for statistics: task -> kind -> (instance x phrasing) scores.

A *record* is one scored (task, instruction, instance) triple, a
:class:`~heedful.evaluate.records.Record` (its ``score`` a fraction in [0, 1]). Bootstrap resamples and random streams are drawn here so that every
statistic built on them is reproducible per (seed, task, kind).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from heedful.errors import HeedfulError
from heedful.evaluate.records import Record

OVERALL = "overall"


@dataclass
class KindData:
    """One kind on one task as a dense (instance x phrasing) matrix; NaN = not scored."""

    phrasings: list[str]
    instances: list[str]
    scores: np.ndarray

    def phrasing_acc(self) -> np.ndarray:
        return np.nanmean(self.scores, axis=0)

    def instance_mean(self) -> np.ndarray:
        return np.nanmean(self.scores, axis=1)


def group_records(records: Iterable[Record]) -> dict[str, dict[str, KindData]]:
    """Arrange records as task -> kind -> score matrix; one score per (instance, phrasing)."""
    cells: dict[str, dict[str, dict[tuple[str, str], float]]] = {}
    for index, record in enumerate(records):
        task, iid, kind, inst = record.task, record.instruction_id, record.instruction_kind, record.instance_id
        key = (inst, iid)
        per_kind = cells.setdefault(task, {}).setdefault(kind, {})
        if key in per_kind:
            raise HeedfulError(
                f"record {index}: duplicate score for task '{task}', kind '{kind}', "
                f"instruction '{iid}', instance '{inst}'"
            )
        per_kind[key] = record.score
    if not cells:
        raise HeedfulError("no records to analyse")
    grouped: dict[str, dict[str, KindData]] = {}
    for task, kinds in cells.items():
        grouped[task] = {}
        for kind, scores in kinds.items():
            phrasings = sorted({p for _, p in scores})
            instances = sorted({i for i, _ in scores})
            col = {p: j for j, p in enumerate(phrasings)}
            row = {i: j for j, i in enumerate(instances)}
            matrix = np.full((len(instances), len(phrasings)), np.nan)
            for (inst, phr), value in scores.items():
                matrix[row[inst], col[phr]] = value
            grouped[task][kind] = KindData(phrasings, instances, matrix)
    return grouped


def bootstrap_weights(n: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    draws = rng.integers(0, n, size=(n_bootstrap, n))
    weights = np.zeros((n_bootstrap, n))
    np.add.at(weights, (np.repeat(np.arange(n_bootstrap), n), draws.ravel()), 1.0)
    return weights


def stream_rng(seed: int, *names: str) -> np.random.Generator:
    # One stream per (seed, task, kind): adding a task never changes another's numbers.
    return np.random.default_rng([seed % 2**64, *(zlib.crc32(n.encode()) for n in names)])
