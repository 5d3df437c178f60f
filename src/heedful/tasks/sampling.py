"""Pick the instances a run uses: one split of a task, cut to a sample budget.

A budget is a count (the first N in file order, or a seeded random N), a fraction of the
split, or everything. Sample-efficiency experiments (Gupta 2023) train on the first N
training instances of each task; a seed draws a random subset instead.
"""

from __future__ import annotations

import math
import random

from heedful.errors import HeedfulError
from heedful.tasks.types import SPLITS, Instance, Task

Budget = int | float | None


def parse_budget(text: str) -> Budget:
    """Parse a CLI budget: ``all`` (None), a count ``100``, a fraction ``0.5`` or ``25%``."""
    value = text.strip().lower()
    if value in ("all", "none"):
        return None
    try:
        if value.endswith("%"):
            return _check_budget(float(value[:-1]) / 100.0, text)
        if value.isdigit() or (value.startswith(("+", "-")) and value[1:].isdigit()):
            return _check_budget(int(value), text)
        return _check_budget(float(value), text)
    except ValueError:
        raise HeedfulError(
            f"budget '{text}': expected 'all', a count like 100, a fraction like 0.5 or a percentage like 25%"
        ) from None


def _check_budget(budget: object, shown: object) -> Budget:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise HeedfulError(f"budget {shown!r}: expected an int, a float fraction, 'all' or None")
    if isinstance(budget, int):
        if budget < 1:
            raise HeedfulError(f"budget {shown!r}: a count must be at least 1")
        return budget
    if not 0.0 < budget <= 1.0:  # also rejects NaN
        raise HeedfulError(f"budget {shown!r}: a fraction must be in (0, 1]; use an integer for a count")
    return budget


def budget_size(budget: Budget, available: int) -> int:
    """How many of ``available`` instances a budget keeps (a fraction rounds half up, at least 1)."""
    budget = _check_budget(budget, budget)
    if available == 0:
        return 0
    if budget is None:
        return available
    if isinstance(budget, int):
        return min(budget, available)
    return max(1, min(available, math.floor(budget * available + 0.5)))


def select_instances(
    task: Task,
    split: str = "test",
    budget: int | float | str | None = None,
    seed: int | None = None,
) -> list[Instance]:
    """Instances of ``split`` within ``budget``, always in file order.

    ``budget`` None or ``"all"`` keeps the whole split; an int N keeps the first N (a
    seeded random N when ``seed`` is given); a float in (0, 1] keeps that fraction of the
    split, rounded half up and at least 1. A budget larger than the split keeps it all; an
    empty split gives an empty list.
    """
    if split not in SPLITS:
        raise HeedfulError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    return within_budget(task.split(split), budget, seed)


def within_budget(pool: list[Instance], budget: int | float | str | None, seed: int | None = None) -> list[Instance]:
    """The instances of ``pool`` a budget keeps, in pool order (see :func:`select_instances`)."""
    if isinstance(budget, str):
        budget = parse_budget(budget)
    size = budget_size(budget, len(pool))
    if size == len(pool):
        return pool
    if seed is None:
        return pool[:size]
    chosen = sorted(random.Random(seed).sample(range(len(pool)), size))
    return [pool[i] for i in chosen]
