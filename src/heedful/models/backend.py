"""What every Hugging Face backend shares: lengths, truncation, greedy generation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from heedful.errors import HeedfulError
from heedful.models.batching import pad_left, pad_right, run_sorted
from heedful.models.encoding import PairEncoder
from heedful.models.greedy import greedy_decode
from heedful.models.requests import EncodedRequest
from heedful.models.stops import answers_have_stop, cut_at_stop
from heedful.models.sun2023 import option_probabilities
from heedful.models.types import ChoiceRequest, Progress

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("heedful.models")

TRUNCATION_MODES = ("left", "error")
# lm-eval's fallback when neither the config nor the tokenizer gives a context size.
DEFAULT_MAX_LENGTH = 2048
_TOKENIZER_INFINITY = 1000000000000000019884624838656


def is_prompt_learning(model: Any) -> bool:
    """PEFT prefix/prompt/p-tuning adapters inject virtual tokens on every forward call."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


class HFBackend:
    """Base of :class:`CausalBackend` and :class:`Seq2SeqBackend` (see ``heedful.models.types.Backend``).

    ``truncation`` decides what happens to prompts longer than the model's context:
    ``"left"`` drops their oldest tokens (counted in ``truncation_count``, with a warning),
    ``"error"`` raises :class:`HeedfulError`.
    """

    is_seq2seq: bool = False
    # Set by a causal backend whose model reads back its key/value cache: the forward
    # keyword for it, and whether the forward takes ``logits_to_keep``. With a keyword,
    # greedy decoding runs heedful's loop (:mod:`heedful.models.greedy`), else ``generate``.
    _cache_keyword: str | None = None
    _logits_to_keep: bool = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        add_bos: bool = False,
        truncation: str = "left",
        max_length: int | None = None,
    ) -> None:
        if truncation not in TRUNCATION_MODES:
            raise HeedfulError(f"truncation must be one of {', '.join(TRUNCATION_MODES)}, not '{truncation}'")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.truncation = truncation
        self.truncation_count = 0
        self.encoder = PairEncoder(tokenizer, seq2seq=self.is_seq2seq, add_bos=add_bos)
        self._max_length = max_length
        _ensure_pad_token(tokenizer)

    # ----------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def max_length(self) -> int:
        """Context size in tokens, found as lm-eval finds it (config, then tokenizer, then 2048)."""
        if self._max_length:
            return self._max_length
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(self.config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < _TOKENIZER_INFINITY:
            return model_max
        return DEFAULT_MAX_LENGTH

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    @property
    def _decoder_start(self) -> int:
        """The token a seq2seq decoder starts from (the config's, else the pad token)."""
        start = getattr(self.config, "decoder_start_token_id", None)
        return int(self.pad_id if start is None else start)

    @property
    def eos_ids(self) -> set[int]:
        """Every token id that ends a generation (the generation config may list several)."""
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.tokenizer):
            eos = getattr(source, "eos_token_id", None)
            if isinstance(eos, int):
                ids.add(eos)
            elif isinstance(eos, (list, tuple)):
                ids.update(int(e) for e in eos)
        return ids

    # ----------------------------------------------------------------- truncation
    def _fit(self, ids: list[int], budget: int, where: str) -> tuple[list[int], bool]:
        """Left-truncate ``ids`` to ``budget`` tokens, or raise in ``truncation='error'`` mode."""
        if budget < 1:
            raise HeedfulError(
                f"{where}: the options or new tokens leave no room for the prompt in a {self.max_length}-token context"
            )
        if len(ids) <= budget:
            return ids, False
        if self.truncation == "error":
            raise HeedfulError(
                f"{where}: prompt is {len(ids)} tokens, over the {budget} that fit the model's "
                f"{self.max_length}-token context (use truncation 'left' to cut it)"
            )
        return ids[-budget:], True

    def _encode_requests(
        self, requests: Sequence[ChoiceRequest], *, context_budget: Callable[[int], int]
    ) -> list[EncodedRequest]:
        """Token ids of each request (lm-eval's encoding), contexts cut to ``context_budget(longest option)``."""
        work: list[EncodedRequest] = []
        n_cut = 0
        for i, req in enumerate(requests):
            where = f"request {i}"
            ctx, conts = self.encoder.encode_request(req.context, req.continuations, where)
            longest = max(len(c) for c in conts)
            if longest > self.max_length:
                raise HeedfulError(
                    f"{where}: an option is {longest} tokens, longer than the {self.max_length}-token context"
                )
            ctx, cut = self._fit(ctx, context_budget(longest), where)
            n_cut += cut
            work.append(EncodedRequest(ctx, conts, req.continuations))
        self._note_truncated(n_cut)
        return work

    def _note_truncated(self, n: int) -> None:
        if n:
            self.truncation_count += n
            log.warning("%d prompt(s) longer than the %d-token context were left-truncated", n, self.max_length)

    # ----------------------------------------------------------------- generation
    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.encoder.encode(prompt)
        return ids if ids else [self.encoder.prefix_token_id]

    def _fit_prompts(self, prompts: Sequence[str], budget: int) -> list[list[int]]:
        """Token ids of each prompt, cut to ``budget`` (counted, or refused in error mode)."""
        encoded, n_cut = [], 0
        for i, prompt in enumerate(prompts):
            ids, cut = self._fit(self._prompt_ids(prompt), budget, f"prompt {i}")
            encoded.append(ids)
            n_cut += cut
        self._note_truncated(n_cut)
        return encoded

    def _generation_budget(self, max_new_tokens: int) -> int:
        # The encoder and decoder of a seq2seq model have separate budgets.
        return self.max_length if self.is_seq2seq else self.max_length - max_new_tokens

    def _batch_inputs(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        # Causal models continue the last prompt token, so their prompts are padded on the left.
        ids, mask = pad_right(rows, self.pad_id) if self.is_seq2seq else pad_left(rows, self.pad_id)
        return ids.to(self.device), mask.to(self.device)

    def _greedy_config(self, max_new_tokens: int, stop: Sequence[str], scores: bool) -> GenerationConfig:
        # A fresh config, so a checkpoint's sampling defaults never leak into greedy decoding.
        eos = sorted(self.eos_ids)
        return GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.pad_id,
            eos_token_id=eos if eos else None,
            decoder_start_token_id=getattr(self.config, "decoder_start_token_id", None),
            return_dict_in_generate=True,
            output_scores=scores,
        )

    def _greedy(
        self,
        rows: list[list[int]],
        max_new_tokens: int,
        stop: Sequence[str] = (),
        scores: bool = False,
        *,
        shared: int = 0,
        prefix: Any = None,
    ) -> tuple[list[list[int]], tuple[torch.Tensor, ...] | None]:
        """Greedy-decode ``rows``; returns each row's new tokens (cut after the first EOS) and step scores.

        A row stopped by a stop string ends with the token that completed it (``generate``
        pads it after that). Step scores are float32 ``[len(rows), vocab]`` logits; a row
        that has ended holds zeros (heedful's loop) or its padding's logits (``generate``).
        With ``prefix`` (from :meth:`_prompt_groups`), ``rows`` are the prompts past their
        ``shared`` first tokens, whose cache it is.
        """
        if self._cache_keyword is not None and not is_prompt_learning(self.model):
            return greedy_decode(
                self.model,
                rows,
                max_new_tokens=max_new_tokens,
                pad_id=self.pad_id,
                eos_ids=self.eos_ids,
                cache_keyword=self._cache_keyword,
                logits_to_keep=self._logits_to_keep,
                stopped=(lambda answers: answers_have_stop(self.tokenizer, answers, stop)) if stop else None,
                scores=scores,
                prefix=prefix,
                shared=shared,
            )
        assert prefix is None, "only heedful's loop decodes on a shared prefix"
        if is_prompt_learning(self.model):
            return self._greedy_by_full_passes(rows, max_new_tokens, stop, scores)
        ids, mask = self._batch_inputs(rows)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=self._greedy_config(max_new_tokens, stop, scores),
                stopping_criteria=StoppingCriteriaList([_AnswerStop(self.tokenizer, stop, ids.shape[1], self.is_seq2seq)])
                if stop
                else None,
            )
        sequences = out.sequences
        # Causal outputs repeat the prompt; seq2seq outputs start with the decoder start token.
        new = sequences[:, 1:] if self.is_seq2seq else sequences[:, ids.shape[1] :]
        eos = self.eos_ids
        tokens: list[list[int]] = []
        for row in new.tolist():
            cut = next((k + 1 for k, t in enumerate(row) if t in eos), len(row))
            tokens.append(row[:cut])
        return tokens, (tuple(out.scores) if scores else None)

    def _greedy_by_full_passes(
        self, rows: list[list[int]], max_new_tokens: int, stop: Sequence[str] = (), scores: bool = False
    ) -> tuple[list[list[int]], tuple[torch.Tensor, ...] | None]:
        """:meth:`_greedy` one row at a time, running the whole sequence through the model at every step.

        For prompt-learning adapters: with transformers 5.24 and peft 0.21, ``generate``
        silently drops their virtual tokens (peft hands them over as ``past_key_values``,
        which transformers ignores beside its own ``cache``), so it decodes as the base
        model. A full forward pass is what the adapter was trained with, on any version.
        Quadratic in the answer's length; only these adapters take this path.
        """
        dev, eos = self.device, self.eos_ids
        tokens: list[list[int]] = []
        steps: list[list[torch.Tensor]] = []
        for row in rows:
            new: list[int] = []
            row_scores: list[torch.Tensor] = []
            while len(new) < max_new_tokens:
                with torch.inference_mode():
                    if self.is_seq2seq:
                        decoder_ids = torch.tensor([[self._decoder_start, *new]], device=dev)
                        out = self.model(input_ids=torch.tensor([row], device=dev), decoder_input_ids=decoder_ids)
                    else:
                        out = self.model(input_ids=torch.tensor([row + new], device=dev))
                logits = out.logits[0, -1].float()
                row_scores.append(logits)
                new.append(int(logits.argmax()))
                if new[-1] in eos:
                    break
                if stop and answers_have_stop(self.tokenizer, [new], stop)[0]:
                    break
            tokens.append(new)
            steps.append(row_scores)
        if not scores or max_new_tokens < 1:
            return tokens, (() if scores else None)
        # As generate's scores: one [batch, vocab] tensor per step (rows that ended early hold zeros).
        n_steps = max(len(s) for s in steps)
        zeros = torch.zeros_like(steps[0][0])
        return tokens, tuple(torch.stack([s[k] if k < len(s) else zeros for s in steps]) for k in range(n_steps))

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] = (),
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[str]:
        """Greedy continuations of ``prompts`` (new text only), each cut at its first stop string."""
        encoded = self._fit_prompts(prompts, self._generation_budget(max_new_tokens))
        stops = [s for s in stop if s]
        tokens = self._greedy_tokens(encoded, max_new_tokens, stops, batch_size=batch_size, progress=progress)
        eos = self.eos_ids
        texts = [self.tokenizer.decode([t for t in row if t not in eos], skip_special_tokens=True) for row in tokens]
        return [cut_at_stop(text, stops) for text in texts]

    def _greedy_tokens(
        self,
        prompts: Sequence[list[int]],
        max_new_tokens: int,
        stops: Sequence[str],
        *,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[list[int]]:
        """Each prompt's new tokens (:meth:`_greedy`), length-sorted batches within each group sharing a prefix."""

        def run(batch: list[list[int]], shared: int, prefix: Any) -> list[list[int]]:
            return self._greedy([ids[shared:] for ids in batch], max_new_tokens, stops, shared=shared, prefix=prefix)[0]

        def run_group(group: list[list[int]], shared: int, prefix: Any) -> list[list[int]]:
            return run_sorted(
                group, length=len, batch_size=batch_size, run_batch=partial(run, shared=shared, prefix=prefix),
                progress=progress,
            )

        return self._per_prompt_group(prompts, prompts, run_group, decoding=True)

    def _per_prompt_group(
        self,
        items: Sequence[T],
        prompts: Sequence[Sequence[int]],
        run_group: Callable[[list[T], int, Any], list[R]],
        *,
        decoding: bool,
    ) -> list[R]:
        """``run_group(items of a group, shared, prefix cache)`` per :meth:`_prompt_groups` group; results in input order."""
        results: list[Any] = [None] * len(items)
        for shared, idx, prefix in self._prompt_groups(prompts, decoding=decoding):
            for i, out in zip(idx, run_group([items[i] for i in idx], shared, prefix), strict=True):
                results[i] = out
        return results

    def _prompt_groups(
        self, prompts: Sequence[Sequence[int]], *, decoding: bool = False
    ) -> Iterator[tuple[int, list[int], Any]]:
        """Prompts (indices) grouped by first ``shared`` tokens whose key/value cache they read: ``(shared, indices, cache)``.

        Here one group sharing nothing; a causal model shares prefixes (its override).
        ``decoding``: for greedy decoding (left-padded after the prefix), not packed scoring.
        """
        yield 0, list(range(len(prompts))), None

    def option_probabilities_after_generation(
        self,
        requests: Sequence[ChoiceRequest],
        *,
        max_new_tokens: int = 32,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[tuple[float, ...]]:
        """Sun et al. (2023) scoring: generate greedily, then score each option on the generation's steps.

        See :mod:`heedful.models.sun2023` for exactly what is mirrored. Returns, per request,
        one probability per option (the product over the first steps); pick the argmax.
        """
        budget = self._generation_budget(max_new_tokens)
        work, n_cut = [], 0
        for i, req in enumerate(requests):
            ids, cut = self._fit(self._prompt_ids(req.context), budget, f"request {i}")
            n_cut += cut
            options = [self.encoder.option_ids(o) for o in req.continuations]
            if not options or any(not o for o in options):
                raise HeedfulError(f"request {i}: every option needs at least one token")
            work.append((ids, options))
        self._note_truncated(n_cut)

        def run(batch: list[tuple[list[int], list[list[int]]]], shared: int, prefix: Any) -> list[tuple[float, ...]]:
            # Only the first min(option length) steps are scored, so generate no further.
            steps = min(max_new_tokens, max(min(len(o) for o in opts) for _, opts in batch))
            rows = [ids[shared:] for ids, _ in batch]
            tokens, scores = self._greedy(rows, steps, scores=True, shared=shared, prefix=prefix)
            assert scores is not None
            logprobs = torch.log_softmax(torch.stack(scores, dim=1).float(), dim=-1)
            return [
                option_probabilities(logprobs[b], opts, n_steps=min(len(tokens[b]), steps))
                for b, (_, opts) in enumerate(batch)
            ]

        def run_group(group: list[tuple[list[int], list[list[int]]]], shared: int, prefix: Any) -> list[tuple[float, ...]]:
            return run_sorted(
                group, length=lambda w: len(w[0]), batch_size=batch_size,
                run_batch=partial(run, shared=shared, prefix=prefix), progress=progress,
            )

        return self._per_prompt_group(work, [ids for ids, _ in work], run_group, decoding=True)


class _AnswerStop(StoppingCriteria):
    """Stop a row once a stop string appears after its answer's first non-space character."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int, is_seq2seq: bool):
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.start = 1 if is_seq2seq else prompt_len  # seq2seq rows start with the decoder start token

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        done = answers_have_stop(self.tokenizer, input_ids[:, self.start :].tolist(), self.stops)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _ensure_pad_token(tokenizer: Any) -> None:
    """Pick a pad token as lm-eval does: keep it, else UNK, else EOS."""
    if tokenizer.pad_token_id is not None:
        return
    if tokenizer.unk_token_id is not None:
        tokenizer.pad_token_id = tokenizer.unk_token_id
    elif tokenizer.eos_token_id is not None:
        tokenizer.pad_token_id = tokenizer.eos_token_id
    else:
        raise HeedfulError("the tokenizer has no pad, unk or eos token to pad batches with")
