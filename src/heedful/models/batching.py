"""Length-sorted batching, cut by item count and a memory budget, with out-of-memory back-off."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from heedful.models.types import Progress

log = logging.getLogger("heedful.models")

T = TypeVar("T")
R = TypeVar("R")


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA/CPU allocator failures, which a smaller batch may avoid."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_sorted(
    items: Sequence[T],
    *,
    length: Callable[[T], int],
    batch_size: int,
    run_batch: Callable[[list[T]], list[R]],
    progress: Progress | None = None,
    cost: Callable[[T], float] | None = None,
    budget: float | None = None,
    max_tokens: int | None = None,
) -> list[R]:
    """Run ``run_batch`` over ``items`` longest first and return results in input order.

    Longest-first keeps padding low within a batch and makes an out-of-memory error
    happen on the first batch. A batch holds at most ``batch_size`` items and, given
    ``cost`` and ``budget``, stops growing before its count times its costliest item (what
    a padded batch holds) would pass ``budget``, and, given ``max_tokens``, before the
    items' summed ``length`` would pass it (a packed batch); it always takes one item. On an
    out-of-memory error the batch is halved and the same items retried, down to a batch of
    one, after which the error propagates; later batches keep the smaller size.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    order = sorted(range(len(items)), key=lambda i: -length(items[i]))
    costs = [cost(item) for item in items] if cost is not None and budget is not None else None
    results: list[R | None] = [None] * len(items)
    start = 0
    while start < len(order):
        end = min(start + batch_size, len(order))
        if costs is not None:
            worst = costs[order[start]]
            for k in range(start + 1, end):
                worst = max(worst, costs[order[k]])
                if (k - start + 1) * worst > budget:  # type: ignore[operator]
                    end = k
                    break
        if max_tokens is not None:
            total = length(items[order[start]])
            for k in range(start + 1, end):
                total += length(items[order[k]])
                if total > max_tokens:
                    end = k
                    break
        idx = order[start:end]
        try:
            outputs = run_batch([items[i] for i in idx])
        except (RuntimeError, torch.OutOfMemoryError) as err:
            if not is_out_of_memory(err) or len(idx) == 1:
                raise
            batch_size = max(1, len(idx) // 2)
            log.warning("out of memory on a batch of %d; retrying with batch size %d", len(idx), batch_size)
            _release_memory()
            continue
        for i, out in zip(idx, outputs, strict=True):
            results[i] = out
        start += len(idx)
        if progress is not None:
            progress(len(idx))
    return results  # type: ignore[return-value]


def pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows into ``(ids, mask)`` long tensors."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def pad_left(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token rows into ``(ids, mask)`` long tensors (causal generation)."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask
