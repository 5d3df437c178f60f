"""Decoder-only (causal) Hugging Face models: packed scoring, generation on shared prefixes, hidden states."""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from heedful.errors import HeedfulError
from heedful.models.backend import HFBackend, is_prompt_learning
from heedful.models.batching import pad_right, run_sorted
from heedful.models.head import capture_head_input, final_logits, unwrap
from heedful.models.packing import (
    FULL,
    SLIDING,
    PackedRow,
    attention_masks,
    bin_rows,
    layer_kinds,
    pack_options,
    stack_rows,
)
from heedful.models.prefixes import shared_prefixes
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


def packed_logits(
    model: Any,
    rows: Sequence[PackedRow],
    n_prompts: Sequence[int],
    *,
    kinds: set[str],
    window: int | None,
    additive: torch.dtype | None,
    pad_id: int,
    shared: int = 0,
    prefix: Any = None,
    cache_keyword: str | None = None,
) -> torch.Tensor:
    """Float32 logits ``[K, vocab]`` where packed ``rows`` are scored, rows in order.

    Per row: its prompts' last positions, then its option tokens after the first. The
    rows run as one padded batch; the head runs only at those positions (its input is
    captured, :mod:`heedful.models.head`), whichever row they are in. ``prefix``: the cache
    of ``shared`` tokens every row starts with (copied: the call appends to it).
    """
    dev = next(model.parameters()).device
    ids, positions = stack_rows(rows, pad_id)
    masks = attention_masks(rows, n_prompts, shared, kinds, window, additive_dtype=additive)
    masks = {k: m.to(dev) for k, m in masks.items()} if isinstance(masks, dict) else masks.to(dev)
    kwargs: dict[str, Any] = {}
    if prefix is not None:
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(len(rows))
        kwargs[cache_keyword] = cache  # type: ignore[index]
    inner = unwrap(model)
    head = inner.get_output_embeddings()
    with capture_head_input(head) as box:
        model(
            input_ids=ids.to(dev), position_ids=positions.to(dev), attention_mask=masks, use_cache=prefix is not None,
            **kwargs,
        )
    keep_row = torch.cat([torch.full((len(r.last) + len(r.tail_index),), k) for k, r in enumerate(rows)])
    keep_col = torch.cat([torch.cat([r.last, r.tail_index]) for r in rows])
    hidden = box["hidden"][keep_row.to(dev), keep_col.to(dev)]
    return final_logits(inner.config.get_text_config(), head(hidden)).float()


def packs_sequences(
    model: Any, kinds: set[str], window: int | None, additive: torch.dtype | None
) -> tuple[bool, str]:
    """Whether ``model`` scores sequences packed in one row as it scores each alone.

    Found by trying: two 4-token prompts, each with a 3-token option, packed with their
    block mask (:func:`heedful.models.packing.attention_masks`) must give each option's
    log-probabilities of its own pass over prompt + option. A model that ignores the 4D
    mask (transformers then infers sequences from where the position ids restart) or the
    position ids differs by whole nats (as in :func:`cache_keyword`). Returns ``(True,
    "")`` or ``(False, reason)``.
    """
    if is_prompt_learning(model):
        return False, "prompt-learning adapters re-inject their virtual tokens on every forward call"
    if not kinds <= {FULL, SLIDING}:
        return False, f"no packed attention mask for layers of kind {sorted(kinds - {FULL, SLIDING})}"
    dev = next(model.parameters()).device
    middle = int(model.config.get_text_config().vocab_size) // 2
    prompts = [list(range(middle, middle + 4)), list(range(middle + 4, middle + 8))]
    options = [(0, list(range(middle + 8, middle + 11))), (1, list(range(middle + 11, middle + 14)))]
    rows = [pack_options(prompts, options, 0)]
    with torch.inference_mode():
        try:
            logits = packed_logits(model, rows, [len(prompts)], kinds=kinds, window=window, additive=additive, pad_id=0)
        except (TypeError, ValueError, RuntimeError, AttributeError) as exc:
            return False, f"the model takes no packed rows with a 4D attention mask ({exc})"
        row = rows[0]
        for r, (i, option) in enumerate(options):
            packed = logits[torch.cat([torch.tensor([i]), len(prompts) + torch.nonzero(row.tail_option == r)[:, 0]]).to(dev)]
            ids = prompts[i] + option[:-1]
            alone = model(input_ids=torch.tensor([ids], device=dev), use_cache=False).logits[0, len(prompts[i]) - 1 :]
            if not torch.allclose(torch.log_softmax(packed, -1), torch.log_softmax(alone.float(), -1), atol=0.5, rtol=0):
                return False, "a packed row with a 4D attention mask does not score as its sequences alone"
    return True, ""


# Tokens a packed row holds (a batch stops growing before passing it; a longer prompt gets a
# row of its own). Packed attention spans the whole row, so its cost grows with the row's
# square while the matmuls gain little past a few hundred rows.
PACKED_ROW_TOKENS = 512


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

    Scoring packs a batch of prompts and their options into one row with a block mask
    (:mod:`heedful.models.packing`): no padding, and each prompt runs once for all its
    options. The first tokens that several prompts share (a phrasing's instruction, k-shot
    demonstrations) run once, and their key/value cache serves every prompt that starts
    with them (:func:`shared_prefixes`). Prompt-learning adapters (prefix, prompt,
    p-tuning), which re-inject their virtual tokens on every call, and models that take no
    packed rows are scored one sequence per option, with a warning. ``tokens`` counts what
    scoring read.
    """

    is_seq2seq = False

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        config = model.config.get_text_config()
        self._kinds, self._window = layer_kinds(config)
        eager = getattr(config, "_attn_implementation", None) == "eager"
        self._additive = next(model.parameters()).dtype if eager else None  # eager attention adds its mask
        self.shared_prefix, reason = packs_sequences(model, self._kinds, self._window, self._additive)
        self._cache_keyword, cache_reason = cache_keyword(model)
        # Each warning once per process: a training run builds a backend per evaluation.
        if not self.shared_prefix:
            if reason not in _WARNED:
                _WARNED.add(reason)
                log.warning("scoring one sequence per option (slower): %s", reason)
        elif self._cache_keyword is None and cache_reason not in _WARNED:
            _WARNED.add(cache_reason)
            log.warning("prompts share no prefix across instances (slower): %s", cache_reason)
        params = inspect.signature(_base_model(model).forward).parameters
        self._logits_to_keep = "logits_to_keep" in params and not is_prompt_learning(model)
        self._costs = Footprint.of(model)
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

        def packed(items: list[EncodedRequest], shared: int, prefix: Any) -> list[ChoiceScores]:
            self.tokens.prompt_run += shared + sum(len(w.ctx) - shared for w in items)
            return run_sorted(
                items, length=lambda w: w.packed_length(shared), batch_size=batch_size,
                run_batch=partial(self._score_packed, shared=shared, prefix=prefix), progress=progress,
                cost=partial(self._scoring_bytes, shared=shared, batch_size=batch_size), budget=budget,
                max_tokens=PACKED_ROW_TOKENS,
            )

        self.tokens.prompt += sum(len(w.ctx) for w in work)
        self.tokens.tails += sum(len(c) - 1 for w in work for c in w.conts)
        if not self.shared_prefix:
            self.tokens.prompt_run += sum(len(w.ctx) * len(w.conts) for w in work)
            return batched(work, self._score_per_option, per_option=True)
        return self._per_prompt_group(work, [w.ctx for w in work], packed, decoding=False)

    def _prompt_groups(
        self, prompts: Sequence[Sequence[int]], *, decoding: bool = False
    ) -> Iterator[tuple[int, list[int], Any]]:
        """Prompts grouped by shared first tokens (:func:`shared_prefixes`), each group with its prefix's cache.

        The cache is made as its group comes up, so one group's is held at a time. No
        sharing for a model whose cache cannot be read back, for prompt-learning adapters,
        or (in generation, where a prompt's padding sits after the prefix and a sliding
        window counts it) for sliding-window attention; packed scoring masks by position
        and shares there too.
        """
        if self._cache_keyword is None or is_prompt_learning(self.model) or (decoding and self._window is not None):
            yield 0, list(range(len(prompts))), None
            return
        for shared, idx in shared_prefixes(prompts):
            yield shared, idx, self._prefix_cache(list(prompts[idx[0]][:shared])) if shared else None

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

    def _score_packed(self, batch: list[EncodedRequest], *, shared: int = 0, prefix: Any = None) -> list[ChoiceScores]:
        """The batch's prompts and options packed into rows (:mod:`heedful.models.packing`), one forward call.

        Prompts are binned into rows of at most :data:`PACKED_ROW_TOKENS` tokens (a longer
        prompt alone); :meth:`loglikelihoods` already stops a batch at that many tokens, so
        a call holds one row. With ``prefix`` (the
        cache of the first ``shared`` tokens, common to every prompt of the batch), each
        prompt is packed past that prefix and reads the cache.
        """
        dev = self.device
        rows: list[PackedRow] = []
        n_prompts: list[int] = []
        flat: list[tuple[int, int]] = []  # (request, option), in the order the rows hold the options
        first_at: list[int] = []  # per option: the kept logits row of its prompt's last token
        tail_at: list[int] = []  # per tail token: its kept logits row
        offset = 0  # kept logits rows of the rows before
        for members in bin_rows([w.packed_length(shared) for w in batch], PACKED_ROW_TOKENS):
            options = [(i, batch[b].conts[j]) for i, b in enumerate(members) for j in range(len(batch[b].conts))]
            row = pack_options([batch[b].ctx for b in members], options, shared)
            tail_option = row.tail_option + len(flat)
            rows.append(PackedRow(**{**vars(row), "tail_option": tail_option}))
            n_prompts.append(len(members))
            flat += [(b, j) for b in members for j in range(len(batch[b].conts))]
            first_at += [offset + i for i, _ in options]
            tail_at += range(offset + len(members), offset + len(members) + len(row.tail_index))
            offset += len(members) + len(row.tail_index)
        with torch.inference_mode():
            logits = packed_logits(
                self.model, rows, n_prompts, kinds=self._kinds, window=self._window, additive=self._additive,
                pad_id=self.pad_id, shared=shared, prefix=prefix, cache_keyword=self._cache_keyword,
            )
            firsts = torch.tensor([batch[b].conts[j][0] for b, j in flat], device=dev)
            loglik, greedy = token_logprobs(logits[torch.tensor(first_at, device=dev)], firsts)
            loglik = loglik.double()
            if tail_at:
                targets = torch.cat([r.tail_targets for r in rows]).to(dev)
                option = torch.cat([r.tail_option for r in rows]).to(dev)
                lp, is_max = token_logprobs(logits[torch.tensor(tail_at, device=dev)], targets)
                loglik = loglik.index_add(0, option, lp.double())
                missed = torch.zeros(len(flat), dtype=torch.long, device=dev).index_add(0, option, (~is_max).long())
                greedy = greedy & (missed == 0)
        return collect_scores(batch, flat, loglik.cpu().tolist(), greedy.cpu().tolist())

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

    def _scoring_bytes(self, w: EncodedRequest, *, shared: int = 0, per_option: bool = False, batch_size: int = 1) -> int:
        """Estimated working memory of scoring ``w`` in a batch (what ``memory_budget_mb`` is checked against).

        Each forward pass holds, per sequence: the key/value cache of every token it sees
        (one layer's at a time when no cache is kept), activations and attention scores of
        the tokens it runs, and float32 logits (with their log-softmax temporaries) at the
        positions whose logits are kept. The packed path runs the prompt past its
        ``shared`` prefix and every option token after the first in one row, whose
        attention spans the whole row (taken as ``batch_size`` items like this one), and
        keeps logits at the prompt's last position and the options' tokens; the per-option
        path runs prompt + option once per option. An estimate, not a measurement (about
        1.1-1.5 times the peak RSS growth measured with SmolLM2): the model's weights are
        not counted.
        """
        c = self._costs
        ctx = len(w.ctx)
        tails = sum(len(t) - 1 for t in w.conts)
        longest = max(len(t) for t in w.conts) - 1

        def forward(rows: int, seen: int, run: int, kept: int, cached: bool = True) -> int:
            kv = seen * c.kv if cached else run * c.kv // c.layers  # without a cache, one layer's at a time
            return rows * (kv + run * (c.act + c.attn * seen) + kept * c.logits)

        if per_option:
            seq = ctx + longest
            kept = longest + 1 if self._logits_to_keep else seq
            return forward(len(w.conts), seq, seq, kept, cached=is_prompt_learning(self.model))
        run = ctx - shared + tails
        kept = 1 + tails if self._logits_to_keep else run
        return forward(1, shared + batch_size * run, run, kept, cached=shared > 0)

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
