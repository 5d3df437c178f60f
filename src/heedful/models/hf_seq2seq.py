"""Encoder-decoder (seq2seq) Hugging Face models such as T5 / Flan-T5 / Tk-Instruct."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput

from heedful.models.backend import HFBackend, is_prompt_learning
from heedful.models.batching import pad_right, run_sorted
from heedful.models.hf_causal import Footprint, _pick_layer, token_logprobs
from heedful.models.requests import EncodedRequest, collect_scores
from heedful.models.types import ChoiceRequest, ChoiceScores, Progress


class Seq2SeqBackend(HFBackend):
    """An encoder-decoder model (``AutoModelForSeq2SeqLM``), optionally wrapped by a PEFT adapter.

    Scoring encodes each prompt once and runs the decoder over every option
    (teacher-forced from the decoder start token), summing the options' log-probabilities.

    Prompts that start alike (one phrasing's instances) share no work here, unlike on
    :class:`~heedful.models.hf_causal.CausalBackend`: the encoder is bidirectional, so
    the states of a common prefix depend on every token after it and differ from prompt
    to prompt. What is shared is each prompt's encoding among its options; the decoder
    reads only the decoder start token and an option, too short to be worth sharing.
    """

    is_seq2seq = True

    def _encoder(self) -> Any:
        return self.model.get_encoder()

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self._costs = Footprint.of(model)

    def loglikelihoods(
        self,
        requests: Sequence[ChoiceRequest],
        *,
        batch_size: int = 8,
        memory_budget_mb: float | None = None,
        progress: Progress | None = None,
    ) -> list[ChoiceScores]:
        """Summed log-probability of every continuation of every request, in input order.

        ``batch_size`` counts requests; ``memory_budget_mb`` also cuts a batch by its
        estimated working memory. As lm-eval: the context is encoded with the tokenizer's
        special tokens (T5 appends ``</s>``) and keeps its last ``max_length`` tokens;
        continuations are encoded without special tokens.
        """
        # The encoder reads the context, the decoder the options: separate budgets.
        work = self._encode_requests(requests, context_budget=lambda longest: self.max_length)
        return run_sorted(
            work,
            length=lambda w: w.length,
            batch_size=batch_size,
            run_batch=self._score,
            progress=progress,
            cost=self._scoring_bytes,
            budget=None if memory_budget_mb is None else memory_budget_mb * 2**20,
        )

    def _scoring_bytes(self, w: EncodedRequest) -> int:
        """Estimated working memory of scoring ``w``: the encoder pass, then one decoder row per option
        holding its copy of the encoder states' keys and values and all its logits."""
        c = self._costs
        ctx, steps = len(w.ctx), max(len(t) for t in w.conts)
        decoder_row = ctx * c.kv + steps * (c.kv + c.act + c.attn * (ctx + steps) + c.logits)
        return ctx * (c.act + c.attn * ctx) + len(w.conts) * decoder_row

    def _score(self, batch: list[EncodedRequest]) -> list[ChoiceScores]:
        dev = self.device
        enc_ids, enc_mask = pad_right([w.ctx for w in batch], self.pad_id)
        rows = [(b, j) for b, w in enumerate(batch) for j in range(len(w.conts))]
        owners = torch.tensor([b for b, _ in rows], device=dev)
        conts = [batch[b].conts[j] for b, j in rows]
        dec_ids, dec_mask = pad_right([[self._decoder_start] + c[:-1] for c in conts], self.pad_id)
        targets, _ = pad_right(conts, self.pad_id)
        with torch.inference_mode():
            enc_ids, enc_mask = enc_ids.to(dev), enc_mask.to(dev)
            if is_prompt_learning(self.model):
                # Virtual tokens are injected inside the forward call: no encoder reuse.
                encoder_inputs: dict[str, Any] = {"input_ids": enc_ids[owners]}
            else:
                hidden = self._encoder()(input_ids=enc_ids, attention_mask=enc_mask).last_hidden_state
                encoder_inputs = {"encoder_outputs": BaseModelOutput(last_hidden_state=hidden[owners])}
            out = self.model(
                **encoder_inputs,
                attention_mask=enc_mask[owners],
                decoder_input_ids=dec_ids.to(dev),
                decoder_attention_mask=dec_mask.to(dev),
            )
            lp, is_max = token_logprobs(out.logits, targets.to(dev))
            valid = dec_mask.to(dev).bool()
            sums = (lp * valid).double().sum(dim=1).cpu().tolist()
            all_max = (is_max | ~valid).all(dim=1).cpu().tolist()
        return collect_scores(batch, rows, sums, all_max)

    def first_token_hidden_states(self, prompts: Sequence[str], *, layer: int = -1, batch_size: int = 8) -> np.ndarray:
        """Decoder hidden state ``[n, hidden]`` at the decoder start step (the first decoded token).

        ``layer`` indexes ``decoder_hidden_states``: 0 is the decoder embeddings, -1 the
        last layer, -2 the penultimate (Sun et al. 2023, section 4.5).
        """
        encoded = self._fit_prompts(prompts, self.max_length)
        dev = self.device

        def run(batch: list[list[int]]) -> list[np.ndarray]:
            ids, mask = pad_right(batch, self.pad_id)
            start = torch.full((len(batch), 1), self._decoder_start, dtype=torch.long, device=dev)
            with torch.inference_mode():
                out = self.model(
                    input_ids=ids.to(dev),
                    attention_mask=mask.to(dev),
                    decoder_input_ids=start,
                    output_hidden_states=True,
                )
            states = _pick_layer(out.decoder_hidden_states, layer)
            return [states[b, 0].float().cpu().numpy() for b in range(len(batch))]

        if not encoded:
            width = getattr(self.config, "d_model", None) or self.config.hidden_size
            return np.zeros((0, int(width)), dtype=np.float32)
        return np.stack(run_sorted(encoded, length=len, batch_size=batch_size, run_batch=run))
