"""What a model backend is asked and what it answers: one protocol for all architectures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Called with the number of requests (or prompts) just finished; lets a caller drive a bar.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ChoiceRequest:
    """A prompt and the candidate continuations to score after it."""

    context: str
    continuations: tuple[str, ...]

    def __post_init__(self) -> None:
        # Accept lists from callers but keep the dataclass hashable and immutable.
        object.__setattr__(self, "continuations", tuple(self.continuations))


@dataclass(frozen=True)
class ChoiceScores:
    """Scores of each continuation of one :class:`ChoiceRequest`, in the request's order.

    ``logliks`` are summed log-probabilities (natural log) of the continuation's tokens
    given the context; ``n_tokens`` the number of scored tokens and ``n_chars`` the length
    of the continuation string, so callers can normalise per token or per character;
    ``is_greedy`` tells whether greedy decoding would have produced the continuation.
    """

    logliks: tuple[float, ...]
    n_tokens: tuple[int, ...]
    is_greedy: tuple[bool, ...]
    n_chars: tuple[int, ...] = ()


@runtime_checkable
class Backend(Protocol):
    """A loaded model that scores, generates and exposes hidden states.

    Implementations: :class:`heedful.models.hf_causal.CausalBackend` and
    :class:`heedful.models.hf_seq2seq.Seq2SeqBackend`.
    """

    name: str
    model: Any
    tokenizer: Any
    is_seq2seq: bool
    truncation: str
    truncation_count: int

    @property
    def max_length(self) -> int: ...

    def loglikelihoods(
        self,
        requests: Sequence[ChoiceRequest],
        *,
        batch_size: int = 8,
        memory_budget_mb: float | None = None,
        progress: Progress | None = None,
    ) -> list[ChoiceScores]: ...

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] = (),
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[str]: ...

    def first_token_hidden_states(
        self, prompts: Sequence[str], *, layer: int = -1, batch_size: int = 8
    ) -> np.ndarray: ...

    def option_probabilities_after_generation(
        self,
        requests: Sequence[ChoiceRequest],
        *,
        max_new_tokens: int = 32,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[tuple[float, ...]]: ...
