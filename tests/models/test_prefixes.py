"""shared_prefixes against a brute force over every cut of the sorted prompts."""

from __future__ import annotations

import itertools
import os
import random

from heedful.models.prefixes import shared_prefixes


def _saved(groups: list[tuple[int, list[int]]]) -> int:
    return sum((len(idx) - 1) * shared for shared, idx in groups)


def test_shared_prefixes_cut_the_sorted_prompts_where_most_is_saved() -> None:
    header, a, b = list(range(100, 110)), list(range(200, 230)), list(range(300, 330))
    contexts = [
        header + a + [1, 2],
        header + b + [1],
        [5],  # one token: nothing to share
        header + a + [3],
        header + b + [2, 2],
        header + a,  # a prefix of the others: keeps its last token
        [7, 8, 9],
        header + b + [4],
    ]
    groups = shared_prefixes(contexts)
    # Per phrasing (saving 2 x 39 + 2 x 40), not one group over the header (saving 5 x 10).
    assert groups == [(len(header) + len(a) - 1, [5, 0, 3]), (len(header) + len(b), [1, 4, 7]), (0, [2, 6])]
    assert shared_prefixes(contexts, min_length=41) == [(0, list(range(8)))]
    assert shared_prefixes([]) == []


def test_shared_prefixes_save_as_much_as_the_best_cut() -> None:
    rng = random.Random(0)
    for _ in range(200):
        contexts = [[rng.choice((1, 2)) for _ in range(rng.randint(1, 6))] for _ in range(rng.randint(1, 7))]
        groups = shared_prefixes(contexts, min_length=2)
        assert sorted(i for _, idx in groups for i in idx) == list(range(len(contexts)))
        for shared, idx in groups:
            if shared:
                members = [contexts[i] for i in idx]
                assert shared >= 2 and all(len(m) > shared and m[:shared] == members[0][:shared] for m in members)
        # Brute force: every cut of the sorted contexts into runs.
        order = sorted(range(len(contexts)), key=lambda i: contexts[i])
        best = 0
        for mask in itertools.product((0, 1), repeat=max(len(order) - 1, 0)):
            runs, run = [], [order[0]]
            for cut, i in zip(mask, order[1:]):
                if cut:
                    runs.append(run)
                    run = []
                run.append(i)
            runs.append(run)
            saved = 0
            for run in runs:
                members = [contexts[i] for i in run]
                shared = min(len(os.path.commonprefix(members)), *(len(m) - 1 for m in members))
                saved += (len(run) - 1) * shared if len(run) > 1 and shared >= 2 else 0
            best = max(best, saved)
        assert _saved(groups) == best, contexts
