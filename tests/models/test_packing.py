"""Packed rows: layout, block masks against the sequences they stand for, row binning."""

from __future__ import annotations

import random

import torch

from heedful.models.packing import FULL, SLIDING, attention_masks, bin_rows, block_mask, layer_kinds, pack_options


def _sequences(contexts, options, shared):
    """Per packed token, the (sequence, position) keys it must see: its own prompt + option, written out."""
    seen = []
    for ctx in contexts:
        for k in range(shared, len(ctx)):
            seen.append({("p", contexts.index(ctx), q) for q in range(k + 1)})
    for r, (i, cont) in enumerate(options):
        for k in range(len(cont) - 1):
            seen.append({("p", i, q) for q in range(len(contexts[i]))} | {("o", r, q) for q in range(k + 1)})
    return seen


def test_block_mask_lets_each_token_see_exactly_its_own_sequence() -> None:
    rng = random.Random(0)
    for _ in range(50):
        shared = rng.randint(0, 3)
        contexts = [[rng.randint(0, 9) for _ in range(rng.randint(shared + 1, shared + 6))] for _ in range(rng.randint(1, 4))]
        contexts = [c for i, c in enumerate(contexts) if c not in contexts[:i]]  # _sequences finds prompts by value
        options = [(i, [rng.randint(0, 9) for _ in range(rng.randint(1, 4))]) for i in range(len(contexts)) for _ in range(rng.randint(1, 3))]
        row = pack_options(contexts, options, shared)
        # Every key's identity: prefix tokens belong to every prompt (positions < shared).
        keys = [("prefix", q) for q in range(shared)]
        for i, ctx in enumerate(contexts):
            keys += [("p", i, q) for q in range(shared, len(ctx))]
        for r, (_, cont) in enumerate(options):
            keys += [("o", r, q) for q in range(len(cont) - 1)]
        mask = block_mask(row, len(contexts), torch.arange(shared))
        for t, expected in enumerate(_sequences(contexts, options, shared)):
            got = {keys[k] for k in mask[t].nonzero()[:, 0].tolist()}
            prefix = {("p", i, q) for (_, i, q) in expected if q < shared} if shared else set()
            want = (expected - prefix) | {("prefix", q) for q in range(shared)}
            assert got == {k for k in want if k[0] == "prefix" or k in keys}
        # Positions continue each sequence; the tails predict each option's later tokens.
        assert row.positions.tolist()[: sum(len(c) - shared for c in contexts)] == [
            q for c in contexts for q in range(shared, len(c))
        ]
        assert row.tail_targets.tolist() == [t for _, c in options for t in c[1:]]


def test_a_sliding_window_hides_keys_a_window_back() -> None:
    row = pack_options([list(range(10))], [(0, [1, 2, 3])], 4)
    mask = block_mask(row, 1, torch.arange(4), window=3)
    positions = torch.cat([torch.arange(4), row.positions])
    full = block_mask(row, 1, torch.arange(4))
    assert torch.equal(mask, full & ((row.positions[:, None] - positions[None, :]) < 3))
    masks = attention_masks([row], [1], 4, {FULL, SLIDING}, 3, additive_dtype=None)
    # The sliding layers' cache keeps the last window - 1 prefix tokens.
    assert masks[FULL].shape == (1, 1, len(row.ids), 4 + len(row.ids))
    assert masks[SLIDING].shape == (1, 1, len(row.ids), 2 + len(row.ids))


def test_padded_rows_attend_to_nothing_of_the_padding_and_additive_masks_match() -> None:
    rows = [pack_options([[1, 2, 3, 4]], [(0, [5, 6])], 0), pack_options([[7, 8]], [(0, [9])], 0)]
    mask = attention_masks(rows, [1, 1], 0, {FULL}, None, additive_dtype=None)
    assert mask.shape == (2, 1, 5, 5)
    assert mask[1, 0, :2, 2:].sum() == 0  # real tokens never see padding
    assert mask[1, 0, 2:, 2:].equal(torch.eye(3, dtype=torch.bool))  # padding sees itself only
    additive = attention_masks(rows, [1, 1], 0, {FULL}, None, additive_dtype=torch.float32)
    assert torch.equal(additive == 0, mask)


def test_bin_rows_fill_rows_first_fit_longest_first() -> None:
    lengths = [300, 100, 600, 200, 250, 50]
    rows = bin_rows(lengths, 512)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert rows[0] == [2]  # longer than a row: alone
    assert all(sum(lengths[i] for i in r) <= 512 for r in rows[1:])
    assert rows == [[2], [0, 3], [1, 4, 5]]


def test_layer_kinds_read_the_config() -> None:
    class Config:
        pass

    plain, mistral, gemma = Config(), Config(), Config()
    mistral.sliding_window = 4096
    gemma.sliding_window, gemma.layer_types = 512, [SLIDING, FULL]
    assert layer_kinds(plain) == ({FULL}, None)
    assert layer_kinds(mistral) == ({SLIDING}, 4096)
    assert layer_kinds(gemma) == ({SLIDING, FULL}, 512)
