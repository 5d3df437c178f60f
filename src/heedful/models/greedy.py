"""Batched greedy decoding of a causal model on its key/value cache, each row leaving when it stops.

``model.generate`` keeps every row in the batch until the last one stops: a finished row
still costs a forward step, and a ``StoppingCriteria`` re-decodes every row each step.
Here the prompts are left-padded and read in one prefill pass, then each step feeds one
token per unfinished row. A row that ends (EOS, stop string, ``max_new_tokens``) leaves
the batch at once: its input id, attention-mask row, position and cache row are dropped.

The tokens equal ``generate``'s greedy search: the same left padding and position ids
(the cumulative attention mask; no mask at all when nothing is padded, as ``generate``
drops an all-ones mask), and the argmax of the last position's logits in float32.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch

from heedful.models.batching import pad_left

#: Given the new tokens of the rows still decoding, which of them has reached a stop string.
StopCheck = Callable[[Sequence[list[int]]], list[bool]]


def greedy_decode(
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    pad_id: int,
    eos_ids: Collection[int],
    cache_keyword: str,
    logits_to_keep: bool = False,
    stopped: StopCheck | None = None,
    scores: bool = False,
    prefix: Any = None,
    shared: int = 0,
) -> tuple[list[list[int]], tuple[torch.Tensor, ...] | None]:
    """Greedy continuations of the token ``rows``: each row's new tokens and, if asked, each step's logits.

    A row's tokens end with its EOS token, with the token after which ``stopped`` first
    reports it, or at ``max_new_tokens``. ``cache_keyword`` is the forward keyword (and
    output field) of the key/value cache (``cache`` in transformers 5.24, before that
    ``past_key_values``); ``logits_to_keep`` says whether the forward takes that argument.
    ``scores`` are ``generate``'s: one float32 ``[len(rows), vocab]`` tensor per step,
    except that a row which has already stopped holds zeros.

    ``prefix``: the key/value cache (batch of one) of ``shared`` tokens that every prompt
    starts with; ``rows`` are then the prompts past those tokens, left-padded after the
    prefix (the mask hides the padding; positions count real tokens, as ``generate``'s).
    """
    n = len(rows)
    tokens: list[list[int]] = [[] for _ in range(n)]
    steps: list[torch.Tensor] = []
    if n == 0 or max_new_tokens < 1:
        return tokens, (() if scores else None)
    dev = next(model.parameters()).device
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=dev)
    ids, mask = pad_left(rows, pad_id)
    ids, mask = ids.to(dev), mask.to(dev)
    positions = (shared + mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    padded = bool((mask == 0).any())
    extra: dict[str, Any] = {"logits_to_keep": 1} if logits_to_keep else {}
    if prefix is not None:
        cache = copy.deepcopy(prefix)  # the prefix serves every batch of its group
        cache.batch_repeat_interleave(n)
        extra[cache_keyword] = cache
        mask = torch.cat([mask.new_ones((n, shared)), mask], dim=1)
    live = torch.arange(n, device=dev)  # original row of each batch row
    with torch.inference_mode():
        out = model(
            input_ids=ids, attention_mask=mask if padded else None, position_ids=positions, use_cache=True, **extra
        )
        extra.pop(cache_keyword, None)
        cache = getattr(out, cache_keyword, None)
        if cache is None or not hasattr(cache, "batch_select_indices"):
            raise RuntimeError(f"the model returned no key/value cache under '{cache_keyword}' to decode on")
        position = positions[:, -1:]
        while True:
            logits = out.logits[:, -1].float()
            del out  # the prefill's logits can be large; do not hold them through the next step
            if scores:
                step = logits.new_zeros((n, logits.shape[-1]))
                steps.append(step.index_copy_(0, live, logits))
            nxt = logits.argmax(dim=-1)
            ended = torch.isin(nxt, eos)
            live_rows = live.tolist()
            for r, t in zip(live_rows, nxt.tolist(), strict=True):
                tokens[r].append(t)
            if len(tokens[live_rows[0]]) == max_new_tokens:  # every live row has as many tokens
                break
            if stopped is not None:
                ended |= torch.tensor(stopped([tokens[r] for r in live_rows]), dtype=torch.bool, device=dev)
            if bool(ended.all()):
                break
            if bool(ended.any()):
                keep = (~ended).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                live, nxt, position, mask = live[keep], nxt[keep], position[keep], mask[keep]
            position = position + 1
            if padded:
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            out = model(
                input_ids=nxt.unsqueeze(1),
                attention_mask=mask if padded else None,
                position_ids=position,
                use_cache=True,
                **{cache_keyword: cache},
                **extra,
            )
    return tokens, (tuple(steps) if scores else None)
