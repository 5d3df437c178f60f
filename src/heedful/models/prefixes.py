"""Prompts grouped by the first tokens they share, so that a shared prefix runs through the model once.

A robustness study scores every instance under each phrasing, and a SuperNI evaluation
renders every instance of a task after the same definition and demonstrations: most of
each prompt is a prefix that many prompts share. Its key/value cache, computed once,
serves every prompt of the group (scoring in :mod:`heedful.models.hf_causal`, greedy
decoding in :mod:`heedful.models.greedy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

# A shared prefix shorter than this saves less than its extra forward call costs.
MIN_SHARED_PREFIX = 8
# Sorted contexts a prefix group may span (bounds the grouping's search, not the sharing).
_MAX_GROUP = 256


def shared_prefixes(
    contexts: Sequence[Sequence[int]], min_length: int = MIN_SHARED_PREFIX
) -> list[tuple[int, list[int]]]:
    """Groups of contexts (indices) that share their first tokens, with the number they share.

    Sorting the contexts by token ids puts those with a common prefix side by side (exact
    whatever the tokenizer does at the prefix's end: prefixes are compared as ids). The
    sorted run is cut into groups that save the most tokens, a group of ``m`` contexts
    sharing ``n`` tokens saving ``(m - 1) * n``: one phrasing's instances share its whole
    instruction, not merely the chat header that every phrasing shares. Every context keeps
    at least its last token out of the prefix, as its logits predict the first option
    token. Contexts that share fewer than ``min_length`` tokens with their neighbours come
    last, as one group sharing 0 tokens.
    """
    order = sorted(range(len(contexts)), key=lambda i: contexts[i])
    common = [
        min(_common_length(contexts[a], contexts[b]), len(contexts[a]) - 1, len(contexts[b]) - 1)
        for a, b in pairwise(order)
    ]
    n = len(order)
    saved = [0] * (n + 1)  # saved[j]: most tokens saved on the first j sorted contexts
    cut = [(j - 1, 0) for j in range(n + 1)]  # cut[j]: (start, shared) of the group ending there
    for j in range(2, n + 1):
        saved[j] = saved[j - 1]
        shared = common[j - 2]
        for i in range(j - 2, max(j - 1 - _MAX_GROUP, -1), -1):  # the group order[i:j]
            shared = min(shared, common[i])
            if shared < min_length:
                break
            if saved[i] + (j - 1 - i) * shared > saved[j]:
                saved[j], cut[j] = saved[i] + (j - 1 - i) * shared, (i, shared)
    groups, alone, j = [], [], n
    while j > 0:
        i, shared = cut[j]
        if shared:
            groups.append((shared, order[i:j]))
        else:
            alone.append(order[j - 1])
        j = i
    return groups[::-1] + ([(0, sorted(alone))] if alone else [])


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((k for k in range(n) if a[k] != b[k]), n)


