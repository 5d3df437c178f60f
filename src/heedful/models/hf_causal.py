"""Decoder-only (causal) Hugging Face models: shared-prompt scoring, generation, hidden states."""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from heedful.errors import HeedfulError
from heedful.models.backend import HFBackend, is_prompt_learning
from heedful.models.batching import pad_right, run_sorted
from heedful.models.requests import EncodedRequest, collect_scores
from heedful.models.types import ChoiceRequest, ChoiceScores, Progress


def _base_model(model: Any) -> Any:
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


log = logging.getLogger("heedful.models")

_WARNED: set[str] = set()
# transformers 5.24 renamed ``past_key_values`` to ``cache`` (argument and output field).
_CACHE_KEYWORDS = ("cache", "past_key_values")


def returned_cache(out: Any) -> Any:
    """The key/value cache a forward call returned, under whichever name this transformers uses."""
    for name in _CACHE_KEYWORDS:
        if name in out:  # ModelOutput is a mapping of its non-None fields
            return out[name]
    return None


def cache_keyword(model: Any) -> tuple[str | None, str]:
    """The forward keyword through which ``model`` reads back a prompt's key/value cache.

    Found by trying, not by reading the signature (a ``**kwargs`` forward swallows unknown
    names): a 3-token sequence run as 2 tokens + 1 token on the first call's cache must give
    the last position's log-probabilities of one full pass (within rounding). Returns ``(keyword, "")``, or
    ``(None, reason)`` when no keyword works.
    """
    if is_prompt_learning(model):
        return None, "prompt-learning adapters re-inject their virtual tokens on every forward call"
    dev = next(model.parameters()).device
    # Ordinary tokens from mid-vocabulary (special tokens can carry extreme activations).
    ids = torch.arange(3, device=dev).unsqueeze(0) + int(model.config.get_text_config().vocab_size) // 2
    positions = torch.arange(3, device=dev).unsqueeze(0)
    reason = "no forward keyword (cache, past_key_values) gave back a reusable key/value cache"
    with torch.inference_mode():
        try:
            full = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, -1].float()
        except TypeError as exc:
            return None, f"the model's forward takes no position_ids ({exc})"
        for name in _CACHE_KEYWORDS:
            try:
                first = model(input_ids=ids[:, :2], position_ids=positions[:, :2], use_cache=True)
                cache = returned_cache(first)
                if cache is None or not hasattr(cache, "batch_select_indices"):
                    return None, "the model returns no key/value cache that can be copied per option"
                last = model(input_ids=ids[:, 2:], position_ids=positions[:, 2:], use_cache=True, **{name: cache})
            except (TypeError, ValueError):
                continue
            # A cache that works differs from one full pass by rounding (SmolLM2 fp32: ~1e-4
            # nats; bf16 or autocast more); one that is ignored, by whole nats (4-18 measured
            # on SmolLM2 / tiny Llama). 0.5 nats tells them apart whatever the compute dtype.
            if torch.allclose(
                torch.log_softmax(last.logits[0, -1].float(), -1), torch.log_softmax(full, -1), atol=0.5, rtol=0
            ):
                return name, ""
    return None, reason


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


@dataclass
class TokenCounts:
    """Tokens scoring has read, summed over calls (padding not counted)."""

    prompt: int = 0
    """Prompt tokens, each prompt counted once."""
    prompt_run: int = 0
    """Prompt tokens run through the model: shared prefixes once, each option's own copy on the per-option path."""
    tails: int = 0
    """Option tokens after each option's first, run on the prompt's cache."""


@dataclass(frozen=True)
class Footprint:
    """Bytes a forward pass holds per unit, from the model's config: the terms of the scoring memory estimates."""

    kv: int  # per token seen: keys and values of every layer
    layers: int  # a forward pass without a cache holds one layer's keys and values at a time
    act: int  # per token run: the activations one layer holds at a time
    attn: int  # per (query, key) pair: attention scores of one layer
    logits: int  # per kept position: logits, their float32 copy and log-softmax temporaries

    @classmethod
    def of(cls, model: Any) -> Footprint:
        config = model.config.get_text_config()
        size = next(model.parameters()).element_size()
        hidden, heads = int(config.hidden_size), int(config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        inter = int(getattr(config, "intermediate_size", None) or 4 * hidden)
        return cls(
            kv=2 * int(config.num_hidden_layers) * kv_heads * head_dim * size,
            layers=int(config.num_hidden_layers),
            act=(6 * hidden + 3 * inter) * size,
            attn=heads * size,
            logits=int(config.vocab_size) * (size + 8),
        )


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``targets`` under ``logits`` (``[..., vocab]``) and whether each is the argmax."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1), logits.argmax(dim=-1) == targets


class CausalBackend(HFBackend):
    """A decoder-only model (``AutoModelForCausalLM``), optionally wrapped by a PEFT adapter.

    Scoring runs each prompt once and shares its key/value cache among the options
    (``shared_prefix``); the first tokens that several prompts share (a phrasing's
    instruction, k-shot demonstrations) run once, and their cache serves every prompt that
    starts with them (:func:`shared_prefixes`). Prompt-learning adapters (prefix, prompt,
    p-tuning), which re-inject their virtual tokens on every call, are scored one sequence
    per option. ``tokens`` counts what scoring read.
    """

    is_seq2seq = False

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self._cache_keyword, reason = cache_keyword(model)
        self.shared_prefix = self._cache_keyword is not None
        if not self.shared_prefix and reason not in _WARNED:
            _WARNED.add(reason)  # once per process: a training run builds a backend per evaluation
            log.warning("scoring one sequence per option (slower): %s", reason)
        params = inspect.signature(_base_model(model).forward).parameters
        self._logits_to_keep = "logits_to_keep" in params and not is_prompt_learning(model)
        self._costs = Footprint.of(model)
        # Sliding-window attention (Gemma, Mistral): its cache keeps the batch's last positions.
        self._window = getattr(model.config.get_text_config(), "sliding_window", None)
        self.tokens = TokenCounts()

    # ------------------------------------------------------------------ scoring
    def loglikelihoods(
        self,
        requests: Sequence[ChoiceRequest],
        *,
        batch_size: int = 8,
        memory_budget_mb: float | None = None,
        progress: Progress | None = None,
    ) -> list[ChoiceScores]:
        """Summed log-probability of every continuation of every request, in input order.

        ``batch_size`` counts requests (each with all its options); ``memory_budget_mb``
        also cuts a batch by its estimated working memory (:meth:`_scoring_bytes`).
        Tokenisation follows lm-evaluation-harness (see :mod:`heedful.models.encoding`); a
        prompt too long for the context loses its oldest tokens so that prompt plus longest
        option fit.
        """
        # The model reads context + continuation minus its last token (lm-eval's window).
        work = self._encode_requests(requests, context_budget=lambda longest: self.max_length + 1 - longest)
        budget = None if memory_budget_mb is None else memory_budget_mb * 2**20

        def batched(items: list[EncodedRequest], run_batch: Any, **how: Any) -> list[ChoiceScores]:
            cost = partial(self._scoring_bytes, **how)
            return run_sorted(
                items, length=lambda w: w.length, batch_size=batch_size, run_batch=run_batch, progress=progress,
                cost=cost, budget=budget,
            )

        self.tokens.prompt += sum(len(w.ctx) for w in work)
        self.tokens.tails += sum(len(c) - 1 for w in work for c in w.conts)
        if not self.shared_prefix:
            self.tokens.prompt_run += sum(len(w.ctx) * len(w.conts) for w in work)
            return batched(work, self._score_per_option, per_option=True)
        results: list[ChoiceScores | None] = [None] * len(work)
        for shared, idx in shared_prefixes([w.ctx for w in work]):
            group = [work[i] for i in idx]
            self.tokens.prompt_run += shared + sum(len(w.ctx) - shared for w in group)
            prefix = self._prefix_cache(group[0].ctx[:shared]) if shared else None
            run = partial(self._score_shared_prefix, shared=shared, prefix=prefix)
            for i, score in zip(idx, batched(group, run, shared=shared)):
                results[i] = score
        return results  # type: ignore[return-value]

    def _prefix_cache(self, ids: list[int]) -> Any:
        """The key/value cache of ``ids`` (a prefix that several prompts share), batch of one."""
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._logits_to_keep else {}
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([ids], device=self.device),
                position_ids=torch.arange(len(ids), device=self.device).unsqueeze(0),
                use_cache=True,
                **kwargs,
            )
        return returned_cache(out)

    def _score_shared_prefix(
        self, batch: list[EncodedRequest], *, shared: int = 0, prefix: Any = None
    ) -> list[ChoiceScores]:
        """One pass over the (right-padded) prompts, then the options' tails on their copied caches.

        With ``prefix`` (the cache of the first ``shared`` tokens, common to every prompt of
        the batch), only the rest of each prompt is run, on a copy of that cache per prompt.
        """
        dev = self.device
        rest_ids, rest_mask = pad_right([w.ctx[shared:] for w in batch], self.pad_id)
        n_ctx, width = rest_ids.shape
        longest = shared + width + max(len(c) for w in batch for c in w.conts) - 1
        if n_ctx > 1 and self._window and longest >= self._window:
            # A sliding-window layer's cache keeps the last positions of the padded batch,
            # which are padding for a shorter prompt: run such a batch one prompt at a time.
            return [s for w in batch for s in self._score_shared_prefix([w], shared=shared, prefix=prefix)]
        ctx_mask = torch.cat([torch.ones(n_ctx, shared, dtype=torch.long), rest_mask], dim=1).to(dev)
        ctx_lens = torch.tensor([len(w.ctx) for w in batch], device=dev)
        last = ctx_lens - shared - 1  # the last prompt position, counted in the rest
        kwargs: dict[str, Any] = {}
        if prefix is not None:
            cache = copy.deepcopy(prefix)  # the prefix serves every batch of its group
            cache.batch_repeat_interleave(n_ctx)
            kwargs[self._cache_keyword] = cache  # type: ignore[index]
        if self._logits_to_keep:
            # Only the last prompt position's logits are needed; skip the vocabulary
            # projection everywhere else.
            keep = torch.unique(last)
            kwargs["logits_to_keep"] = keep
            cols = torch.searchsorted(keep, last)
        else:
            cols = last
        with torch.inference_mode():
            out = self.model(
                input_ids=rest_ids.to(dev),
                attention_mask=ctx_mask,
                position_ids=(shared + torch.arange(width, device=dev)).expand(n_ctx, width),
                use_cache=True,
                **kwargs,
            )
            first_logits = out.logits[torch.arange(n_ctx, device=dev), cols]  # [n_ctx, vocab]
            rows = [(b, j) for b, w in enumerate(batch) for j in range(len(w.conts))]
            firsts = torch.tensor([batch[b].conts[j][0] for b, j in rows], device=dev)
            owners = torch.tensor([b for b, _ in rows], device=dev)
            first_lp, first_greedy = token_logprobs(first_logits[owners], firsts)
            logliks = first_lp.double().cpu().tolist()
            greedy = first_greedy.cpu().tolist()

            tails = [r for r, (b, j) in enumerate(rows) if len(batch[b].conts[j]) > 1]
            if tails:
                cache = returned_cache(out)
                tail_owner = owners[tails]
                # Copy each prompt's cache once per option that needs it (index repeats gather).
                cache.batch_select_indices(tail_owner)
                conts = [batch[rows[r][0]].conts[rows[r][1]] for r in tails]
                tail_ids, tail_mask = pad_right([c[:-1] for c in conts], self.pad_id)
                targets, _ = pad_right([c[1:] for c in conts], self.pad_id)
                n_tail = tail_ids.shape[1]
                out2 = self.model(
                    input_ids=tail_ids.to(dev),
                    attention_mask=torch.cat([ctx_mask[tail_owner], tail_mask.to(dev)], dim=1),
                    position_ids=ctx_lens[tail_owner].unsqueeze(1) + torch.arange(n_tail, device=dev),
                    use_cache=True,
                    **{self._cache_keyword: cache},
                )
                lp, is_max = token_logprobs(out2.logits, targets.to(dev))
                valid = tail_mask.to(dev).bool()
                sums = (lp * valid).double().sum(dim=1).cpu().tolist()
                all_max = (is_max | ~valid).all(dim=1).cpu().tolist()
                for k, r in enumerate(tails):
                    logliks[r] += sums[k]
                    greedy[r] = greedy[r] and all_max[k]
        return collect_scores(batch, rows, logliks, greedy)

    def _score_per_option(self, batch: list[EncodedRequest]) -> list[ChoiceScores]:
        """One full sequence per option: the reference path, and the one prompt-learning adapters need."""
        dev = self.device
        rows = [(b, j) for b, w in enumerate(batch) for j in range(len(w.conts))]
        ids, mask = pad_right([batch[b].ctx + batch[b].conts[j][:-1] for b, j in rows], self.pad_id)
        targets, valid = pad_right([batch[b].conts[j] for b, j in rows], self.pad_id)
        # Position of each option token's logits: from the last context token on (padding clamped).
        positions = torch.tensor([len(batch[b].ctx) - 1 for b, _ in rows]).unsqueeze(1) + torch.arange(targets.shape[1])
        positions = positions.clamp(max=ids.shape[1] - 1)
        # Prefix tuning hands its virtual tokens over as a cache: leave use_cache to the adapter.
        kwargs: dict[str, Any] = {} if is_prompt_learning(self.model) else {"use_cache": False}
        if self._logits_to_keep:
            # Only the options' positions get vocabulary logits (bounds memory by option length).
            keep = torch.unique(positions)
            kwargs["logits_to_keep"] = keep.to(dev)
            cols = torch.searchsorted(keep, positions)
        else:
            cols = positions
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), **kwargs).logits
            if not self._logits_to_keep:
                # Virtual tokens of a prompt-learning adapter come first; count positions from the end.
                cols = cols + logits.shape[1] - ids.shape[1]
            picked = logits[torch.arange(len(rows)).unsqueeze(1).to(dev), cols.to(dev)]  # [rows, option tokens, vocab]
            lp, is_max = token_logprobs(picked, targets.to(dev))
            valid = valid.to(dev).bool()
            logliks = (lp * valid).double().sum(dim=1).cpu().tolist()
            greedy = (is_max | ~valid).all(dim=1).cpu().tolist()
        return collect_scores(batch, rows, logliks, greedy)

    def _scoring_bytes(self, w: EncodedRequest, *, shared: int = 0, per_option: bool = False) -> int:
        """Estimated working memory of scoring ``w`` in a batch (what ``memory_budget_mb`` is checked against).

        Each forward pass holds, per sequence: the key/value cache of every token it sees
        (one layer's at a time when no cache is kept), activations and attention scores of
        the tokens it runs, and float32 logits (with their log-softmax temporaries) at the
        positions whose logits are kept. The shared path runs the prompt past its ``shared``
        prefix (keeping one position's logits), then every option's tail on a copy of the
        prompt's cache (keeping all its logits); the per-option path runs prompt + option
        once per option. An estimate, not a measurement (about 1.1-1.5 times the peak RSS
        growth measured with SmolLM2): the model's weights are not counted.
        """
        c = self._costs
        ctx = len(w.ctx)
        tails = [len(t) - 1 for t in w.conts]
        longest = max(tails)

        def forward(rows: int, seen: int, run: int, kept: int, cached: bool = True) -> int:
            kv = seen * c.kv if cached else run * c.kv // c.layers  # without a cache, one layer's at a time
            return rows * (kv + run * (c.act + c.attn * seen) + kept * c.logits)

        if per_option:
            seq = ctx + longest
            kept = longest + 1 if self._logits_to_keep else seq
            return forward(len(w.conts), seq, seq, kept, cached=is_prompt_learning(self.model))
        prompt = forward(1, ctx, ctx - shared, 1)
        return prompt + forward(sum(t > 0 for t in tails), ctx + longest, longest, longest)

    # ------------------------------------------------------------ representations
    def first_token_hidden_states(self, prompts: Sequence[str], *, layer: int = -1, batch_size: int = 8) -> np.ndarray:
        """Hidden state ``[n, hidden]`` at the last prompt token (the one that predicts the first new token).

        ``layer`` indexes ``hidden_states`` as transformers returns them: 0 is the
        embeddings, -1 the last layer, -2 the penultimate (Sun et al. 2023, section 4.5).
        """
        encoded = self._fit_prompts(prompts, self.max_length)
        dev = self.device

        # Only hidden states are read: skip the vocabulary projection at every position.
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._logits_to_keep else {}

        def run(batch: list[list[int]]) -> list[np.ndarray]:
            ids, mask = pad_right(batch, self.pad_id)
            with torch.inference_mode():
                out = self.model(
                    input_ids=ids.to(dev), attention_mask=mask.to(dev), output_hidden_states=True, use_cache=False, **kwargs
                )
            states = _pick_layer(out.hidden_states, layer)
            offset = states.shape[1] - ids.shape[1]
            return [states[b, offset + len(row) - 1].float().cpu().numpy() for b, row in enumerate(batch)]

        if not encoded:
            return np.zeros((0, int(self.config.hidden_size)), dtype=np.float32)
        return np.stack(run_sorted(encoded, length=len, batch_size=batch_size, run_batch=run))


def _pick_layer(hidden_states: Sequence[torch.Tensor], layer: int) -> torch.Tensor:
    n = len(hidden_states)
    if not -n <= layer < n:
        raise HeedfulError(f"layer {layer} out of range: the model has hidden states 0..{n - 1} (or -{n}..-1)")
    return hidden_states[layer]
