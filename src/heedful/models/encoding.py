"""Tokenisation of (context, continuation) pairs exactly as lm-evaluation-harness does it.

Mirrors ``TemplateLM._encode_pair`` / ``HFLM.tok_encode`` of EleutherAI's
lm-evaluation-harness (v0.4.x), so that scores can be compared with it:

* trailing whitespace of the context moves to the front of the continuation;
* causal models: ``whole = tok(context + continuation)``, ``ctx = tok(context)`` and the
  continuation tokens are ``whole[len(ctx):]``, both encoded with
  ``add_special_tokens=add_bos`` (False unless the model needs a BOS, as Gemma does);
* seq2seq models: ``ctx = tok(context)`` with the tokenizer's own special tokens (T5
  appends ``</s>``) and ``cont = tok(continuation, add_special_tokens=False)``;
* an empty context is replaced by the prefix token (BOS, else EOS).
"""

from __future__ import annotations

from typing import Any

from heedful.errors import HeedfulError


def needs_bos(config: Any) -> bool:
    """Whether a causal model is scored with a leading BOS (lm-eval: the Gemma family)."""
    return "gemma" in str(getattr(config, "model_type", "") or "")


def move_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the front of the continuation."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


class PairEncoder:
    """Encodes prompts and (context, continuation) pairs for one model."""

    def __init__(self, tokenizer: Any, *, seq2seq: bool, add_bos: bool) -> None:
        self.tokenizer = tokenizer
        self.seq2seq = seq2seq
        self.add_bos = add_bos

    @property
    def prefix_token_id(self) -> int:
        """Token that stands in for an empty context (BOS if the tokenizer has one, else EOS)."""
        tok = self.tokenizer
        token_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if token_id is None:
            raise HeedfulError("empty prompt: the tokenizer has neither a BOS nor an EOS token to stand in for it")
        return int(token_id)

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """lm-eval's ``tok_encode``: causal models add special tokens only when they need a BOS."""
        if add_special_tokens is None:
            if self.seq2seq:
                return list(self.tokenizer.encode(text))
            add_special_tokens = self.add_bos and not self._has_bos_text(text)
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def _has_bos_text(self, text: str) -> bool:
        # A chat template may already write the BOS as text; adding another would double it.
        bos = getattr(self.tokenizer, "bos_token", None)
        return bool(bos) and text.startswith(bos)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the context and of the continuation, as lm-eval's ``_encode_pair``."""
        if context == "":
            return [self.prefix_token_id], self.encode(continuation)
        context, continuation = move_trailing_whitespace(context, continuation)
        if self.seq2seq:
            return self.encode(context), self.encode(continuation, add_special_tokens=False)
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]

    def encode_request(self, context: str, continuations: tuple[str, ...], where: str) -> tuple[list[int], list[list[int]]]:
        """Context ids (shared by every option) and each option's continuation ids."""
        if not continuations:
            raise HeedfulError(f"{where}: no options to score")
        ctx_ids: list[int] | None = None
        conts: list[list[int]] = []
        for j, continuation in enumerate(continuations):
            ctx, cont = self.encode_pair(context, continuation)
            if not cont:
                raise HeedfulError(f"{where}: option {j} ({continuation!r}) has no tokens after tokenisation")
            # The context encoding only depends on the context, so it is the same for all options.
            ctx_ids = ctx if ctx_ids is None else ctx_ids
            conts.append(cont)
        assert ctx_ids is not None
        return ctx_ids, conts

    def option_ids(self, option: str) -> list[int]:
        """An option encoded on its own with the tokenizer's defaults, leading BOS dropped.

        This is how Sun et al. (2023) tokenise label spaces (T5 keeps its ``</s>``; the
        LLaMA ``<s>`` is removed).
        """
        ids = list(self.tokenizer.encode(option))
        bos = self.tokenizer.bos_token_id
        if ids and bos is not None and ids[0] == bos:
            ids = ids[1:]
        return ids
