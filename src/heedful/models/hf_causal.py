"""Decoder-only (causal) Hugging Face models: shared-prompt scoring, generation, hidden states."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
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


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``targets`` under ``logits`` (``[..., vocab]``) and whether each is the argmax."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1), logits.argmax(dim=-1) == targets


class CausalBackend(HFBackend):
    """A decoder-only model (``AutoModelForCausalLM``), optionally wrapped by a PEFT adapter.

    Scoring runs each prompt once and shares its key/value cache among the options
    (``shared_prefix``); prompt-learning adapters (prefix, prompt, p-tuning), which
    re-inject their virtual tokens on every call, are scored one sequence per option.
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

    # ------------------------------------------------------------------ scoring
    def loglikelihoods(
        self, requests: Sequence[ChoiceRequest], *, batch_size: int = 8, progress: Progress | None = None
    ) -> list[ChoiceScores]:
        """Summed log-probability of every continuation of every request, in input order.

        ``batch_size`` counts requests (each with all its options). Tokenisation follows
        lm-evaluation-harness (see :mod:`heedful.models.encoding`); a prompt too long for
        the context loses its oldest tokens so that prompt plus longest option fit.
        """
        # The model reads context + continuation minus its last token (lm-eval's window).
        work = self._encode_requests(requests, context_budget=lambda longest: self.max_length + 1 - longest)
        run = self._score_shared_prefix if self.shared_prefix else self._score_per_option
        return run_sorted(work, length=lambda w: w.length, batch_size=batch_size, run_batch=run, progress=progress)

    def _score_shared_prefix(self, batch: list[EncodedRequest]) -> list[ChoiceScores]:
        """One pass over the (right-padded) prompts, then the options' tails on their copied caches."""
        dev = self.device
        ctx_ids, ctx_mask = pad_right([w.ctx for w in batch], self.pad_id)
        ctx_lens = torch.tensor([len(w.ctx) for w in batch])
        n_ctx, width = ctx_ids.shape
        last = ctx_lens - 1
        kwargs: dict[str, Any] = {}
        if self._logits_to_keep:
            # Only the last prompt position's logits are needed; skip the vocabulary
            # projection everywhere else.
            keep = torch.unique(last)
            kwargs["logits_to_keep"] = keep.to(dev)
            cols = torch.searchsorted(keep, last)
        else:
            cols = last
        with torch.inference_mode():
            out = self.model(
                input_ids=ctx_ids.to(dev),
                attention_mask=ctx_mask.to(dev),
                position_ids=torch.arange(width).expand(n_ctx, width).to(dev),
                use_cache=True,
                **kwargs,
            )
            first_logits = out.logits[torch.arange(n_ctx, device=dev), cols.to(dev)]  # [n_ctx, vocab]
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
                positions = ctx_lens.to(dev)[tail_owner].unsqueeze(1) + torch.arange(n_tail, device=dev)
                mask = torch.cat([ctx_mask.to(dev)[tail_owner], tail_mask.to(dev)], dim=1)
                out2 = self.model(
                    input_ids=tail_ids.to(dev),
                    attention_mask=mask,
                    position_ids=positions,
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
        seqs = [batch[b].ctx + batch[b].conts[j][:-1] for b, j in rows]
        ids, mask = pad_right(seqs, self.pad_id)
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
        # Virtual tokens of a prompt-learning adapter come first; count positions from the end.
        offset = logits.shape[1] - ids.shape[1]
        logliks, greedy = [], []
        for r, (b, j) in enumerate(rows):
            cont = batch[b].conts[j]
            start = offset + len(batch[b].ctx) - 1
            lp, is_max = token_logprobs(logits[r, start : start + len(cont)], torch.tensor(cont, device=dev))
            logliks.append(float(lp.double().sum()))
            greedy.append(bool(is_max.all()))
        return collect_scores(batch, rows, logliks, greedy)

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
