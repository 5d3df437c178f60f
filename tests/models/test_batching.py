"""run_sorted: batches cut by count and by a cost budget, longest first, results in input order."""

from __future__ import annotations

import random

import pytest
import torch

from heedful.models.batching import run_sorted


def _run(items, **kwargs):
    batches: list[list[int]] = []

    def run_batch(batch):
        batches.append(batch)
        return [-x for x in batch]

    out = run_sorted(items, length=lambda x: x, run_batch=run_batch, **kwargs)
    assert out == [-x for x in items]  # input order, whatever the batches
    return batches


def test_batches_grow_until_the_next_item_would_pass_the_budget() -> None:
    items = [random.Random(0).randint(1, 20) for _ in range(60)]
    budget = 40
    batches = _run(items, batch_size=5, cost=float, budget=budget)
    flat = [x for b in batches for x in b]
    assert flat == sorted(items, reverse=True)
    for k, batch in enumerate(batches):
        assert len(batch) <= 5
        # A padded batch costs its count times its costliest item.
        assert len(batch) * max(batch) <= budget
        if k + 1 < len(batches) and len(batch) < 5:
            grown = batch + batches[k + 1][:1]
            assert len(grown) * max(grown) > budget  # cut only where the budget required it


def test_an_item_over_the_budget_runs_alone() -> None:
    assert _run([3, 50, 2, 60], batch_size=8, cost=float, budget=10) == [[60], [50], [3, 2]]


def test_without_a_budget_only_the_count_cuts() -> None:
    assert _run([1, 2, 3, 4, 5], batch_size=2, cost=float) == [[5, 4], [3, 2], [1]]
    assert _run([1, 2, 3, 4, 5], batch_size=2) == [[5, 4], [3, 2], [1]]
    with pytest.raises(ValueError):
        _run([1], batch_size=0)


def test_out_of_memory_halves_a_budgeted_batch_and_keeps_it_smaller() -> None:
    sizes: list[int] = []

    def run_batch(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return batch

    items = [1] * 12
    out = run_sorted(items, length=lambda x: x, batch_size=8, run_batch=run_batch, cost=float, budget=6)
    assert out == items
    assert sizes == [6, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
