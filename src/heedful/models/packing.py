"""Prompts and their options packed into one sequence, with the attention mask that keeps them apart.

Scoring a batch of prompts, each with several options, needs every option read after its
own prompt. Padding each option to the batch's longest (or each prompt to the longest
prompt) runs pad tokens through every layer; copying a prompt's key/value cache per option
moves memory. Here the batch is one row: every prompt (past a prefix they all share,
whose cache is read, not run), then every option's tokens after its first, each at the
position it would have after its own prompt. A block mask lets each prompt token see the
shared prefix and its own prompt, and each option token the prefix, its prompt and its own
earlier tokens: the same attention as one sequence per option, with no padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

# The layer kinds a packed mask is built for; any other (chunked, linear attention) is refused.
FULL, SLIDING = "full_attention", "sliding_attention"


@dataclass(frozen=True)
class PackedRow:
    """One packed sequence: ``ids`` and ``positions`` ``[T]``, and where its scores are read."""

    ids: torch.Tensor
    positions: torch.Tensor
    owner: torch.Tensor  # [T] the prompt each token belongs to
    segment: torch.Tensor  # [T] prompts are segments 0..n-1, option tails n.. after them
    last: torch.Tensor  # [n] index of each prompt's last token (its logits predict the options' first tokens)
    tail_index: torch.Tensor  # [k] indices of the option tokens after the first, in order
    tail_targets: torch.Tensor  # [k] the token each of them predicts
    tail_option: torch.Tensor  # [k] the option (flat row) each belongs to


def pack_options(contexts: Sequence[Sequence[int]], options: Sequence[tuple[int, Sequence[int]]], shared: int) -> PackedRow:
    """Pack ``contexts`` past their first ``shared`` tokens, then each option ``(prompt, ids)``'s tail.

    An option's first token is predicted by its prompt's last position; the rest of it
    (``ids[:-1]`` read, ``ids[1:]`` predicted) is packed after all the prompts.
    """
    ids: list[int] = []
    positions: list[int] = []
    owner: list[int] = []
    last: list[int] = []
    for i, ctx in enumerate(contexts):
        rest = ctx[shared:]
        ids += rest
        positions += range(shared, len(ctx))
        owner += [i] * len(rest)
        last.append(len(ids) - 1)
    segment = list(owner)
    tail_index: list[int] = []
    tail_targets: list[int] = []
    tail_option: list[int] = []
    for r, (i, cont) in enumerate(options):
        n = len(cont) - 1
        if n < 1:
            continue
        tail_index += range(len(ids), len(ids) + n)
        tail_targets += cont[1:]
        tail_option += [r] * n
        ids += cont[:-1]
        positions += range(len(contexts[i]), len(contexts[i]) + n)
        owner += [i] * n
        segment += [len(contexts) + r] * n
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return PackedRow(
        ids=as_long(ids), positions=as_long(positions), owner=as_long(owner), segment=as_long(segment),
        last=as_long(last), tail_index=as_long(tail_index), tail_targets=as_long(tail_targets),
        tail_option=as_long(tail_option),
    )


def block_mask(row: PackedRow, n_prompts: int, prefix_positions: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Boolean ``[T, len(prefix_positions) + T]``: which key each packed token attends to.

    Keys are the cached prefix tokens (at ``prefix_positions``), then the row itself. A
    token sees every prefix token, the earlier tokens of its own segment, and (an option
    token) the whole of its prompt. ``window``: a sliding-window layer's mask, which also
    drops keys ``window`` or more positions back.
    """
    n = len(row.ids)
    index = torch.arange(n)
    causal = index.unsqueeze(1) >= index.unsqueeze(0)
    same_owner = row.owner.unsqueeze(1) == row.owner.unsqueeze(0)
    key_in_prompt = (row.segment < n_prompts).unsqueeze(0)
    same_segment = row.segment.unsqueeze(1) == row.segment.unsqueeze(0)
    inner = causal & same_owner & (key_in_prompt | same_segment)
    mask = torch.cat([torch.ones(n, len(prefix_positions), dtype=torch.bool), inner], dim=1)
    if window is not None:
        key_positions = torch.cat([prefix_positions, row.positions])
        mask &= (row.positions.unsqueeze(1) - key_positions.unsqueeze(0)) < window
    return mask


def layer_kinds(config: object) -> tuple[set[str], int | None]:
    """The attention kinds of a model's layers and its sliding window (from its text config)."""
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    kinds = set(types) if types else ({SLIDING} if window else {FULL})
    return kinds, (int(window) if window and SLIDING in kinds else None)


def bin_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices grouped into rows of at most ``capacity`` summed length (first fit, longest first).

    An item longer than ``capacity`` gets a row of its own. Rows come in the order they
    were opened; within a row, indices keep their input order.
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        k = next((k for k, r in enumerate(room) if lengths[i] <= r), None)
        if k is None:
            rows.append([i])
            room.append(capacity - lengths[i])
        else:
            rows[k].append(i)
            room[k] -= lengths[i]
    return [sorted(r) for r in rows]


def stack_rows(rows: Sequence[PackedRow], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ids`` and ``positions`` ``[R, W]`` of packed rows, right-padded to the longest."""
    width = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, : len(r.ids)] = r.ids
        positions[k, : len(r.ids)] = r.positions
    return ids, positions


def attention_masks(
    rows: Sequence[PackedRow],
    n_prompts: Sequence[int],
    shared: int,
    kinds: set[str],
    window: int | None,
    *,
    additive_dtype: torch.dtype | None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """The 4D mask(s) ``[R, 1, W, keys]`` a forward call takes for packed rows after a ``shared``-token cache.

    A sliding-window layer's cache keeps only its last ``window - 1`` tokens (transformers'
    ``DynamicSlidingWindowLayer``), so its keys start later. Models with both kinds get a
    mask per kind, keyed as their ``layer_types``. A padding token attends to itself only
    (a row that attends to nothing gives NaN), and nothing attends to it.
    ``additive_dtype``: a float mask (0 or the dtype's minimum) for attention that adds
    the mask, instead of a boolean one.
    """
    width = max(len(r.ids) for r in rows)
    prefixes: dict[str, tuple[torch.Tensor, int | None]] = {}
    if FULL in kinds:
        prefixes[FULL] = (torch.arange(shared), None)
    if SLIDING in kinds:
        assert window is not None
        kept = min(shared, window - 1)
        prefixes[SLIDING] = (torch.arange(shared - kept, shared), window)
    masks: dict[str, torch.Tensor] = {}
    for kind, (prefix_positions, kind_window) in prefixes.items():
        n_prefix = len(prefix_positions)
        mask = torch.zeros((len(rows), 1, width, n_prefix + width), dtype=torch.bool)
        for k, (row, n) in enumerate(zip(rows, n_prompts)):
            t = len(row.ids)
            mask[k, 0, :t, : n_prefix + t] = block_mask(row, n, prefix_positions, kind_window)
            pad = torch.arange(t, width)
            mask[k, 0, pad, n_prefix + pad] = True
        if additive_dtype is not None:
            mask = torch.zeros(mask.shape, dtype=additive_dtype).masked_fill_(~mask, torch.finfo(additive_dtype).min)
        masks[kind] = mask
    return next(iter(masks.values())) if len(masks) == 1 else masks
