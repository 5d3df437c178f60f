"""Models behind an OpenAI-compatible API (vLLM, llama.cpp's server, OpenAI): scoring and generation over HTTP.

``--model.name openai:MODEL --model.base_url URL`` asks ``MODEL`` at ``URL`` (default:
``$OPENAI_BASE_URL``, else OpenAI's); the key is ``$OPENAI_API_KEY``, or a dummy for a
local server that checks none.

* ``generate``: greedy (``temperature=0``) completions, or chat completions when
  ``model.chat`` is set (the server applies the chat template). A stop string ends the
  answer only once it has begun, as in the local backends: a reply cut to blank by a
  stop string is asked again without stop strings and cut here.
* ``loglikelihoods``: rank classification from prompt log-probabilities, read as lm-eval
  reads them (``gguf``: the boundary from ``text_offset``; ``local-completions``: the one
  generated token dropped, ``is_greedy`` when each token has the top log-probability):
  one completions request per option on context + option with ``echo=True, logprobs=1,
  max_tokens=1``; the option's tokens are the prompt tokens (``usage.prompt_tokens``)
  whose offset lies at or after the context's end (its trailing whitespace moved to the
  option, as heedful's encoding does). Deliberate difference: that end is counted back
  from the prompt's end, not forward from its start, because vLLM's offsets include the
  echoed BOS text (``<s>``) that the prompt string lacks. The server tokenizes, so the
  scores equal a local model's when it tokenizes as heedful does (vLLM adds the BOS
  token: compare with a local model loaded with ``add_bos_token=True``).
* Hidden states, Sun et al. scoring and anything that needs the weights or the
  tokenizer are not available over an API: they stop with one clear error.

Requests run ``batch_size`` at a time (``--scoring.batch_size``: requests in flight, not
a forward pass) and come back in input order. The ``openai`` client retries rate limits
(429), server errors (5xx) and lost connections with exponential backoff (it honours
``retry-after``); its final failure is one :class:`HeedfulError` line. Answers reach
heedful's store after every chunk of an evaluation (max(4 x batch_size, 16) prompts, see
:func:`heedful.evaluate.runner.evaluate`), so a run stopped by a failure resumes without
asking again what finished chunks answered; it loses at most the chunk in flight.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, NoReturn, TypeVar

import numpy as np

from heedful.errors import HeedfulError
from heedful.models.config import API_PREFIX
from heedful.models.encoding import move_trailing_whitespace
from heedful.models.stops import cut_at_stop
from heedful.models.types import ChoiceRequest, ChoiceScores, Progress

R = TypeVar("R")

MAX_RETRIES = 5  # backoff 0.5, 1, 2, 4, 8 s (less jitter) before giving up: ~15 s for a server that is down
TIMEOUT_S = 600.0  # per request: a long generation on a busy server may queue for minutes
# lm-eval's dummy key for local servers; vLLM and llama.cpp accept any key unless started with one.
DUMMY_KEY = "EMPTY"
MAX_STOPS = 4  # OpenAI accepts at most 4 stop strings; the rest are applied here
NEEDS_ECHO = (
    "rank classification needs prompt log-probabilities (completions with echo=True and logprobs), "
    "which {url} did not return; vLLM and llama.cpp's server return them, OpenAI's chat models do not. "
    "Generation (open tasks) works without them"
)


def api_model(name: str) -> str | None:
    """``MODEL`` of an ``openai:MODEL`` name, else None."""
    return name[len(API_PREFIX) :] if name.startswith(API_PREFIX) else None


class _Remote:
    """Stands in for the weights and tokenizer that a model behind an API does not have here.

    Any use (attribute or call) stops with one line, so a command that needs them
    (training, paraphrasing by sampling, a local chat template) says so instead of
    failing deep inside transformers.
    """

    def __init__(self, name: str, what: str) -> None:
        self._message = (
            f"{name} runs behind an API: it has no local {what}, which this needs; use a local model "
            "(an API model can be evaluated: rank classification and generation; heedful paraphrase asks a "
            "server through --endpoint)"
        )

    def __getattr__(self, attr: str) -> NoReturn:
        if attr.startswith("_"):  # copy and pickle probe dunders (and _message, before __init__)
            raise AttributeError(attr)
        raise HeedfulError(self._message)

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise HeedfulError(self._message)

    def __repr__(self) -> str:
        return "<remote>"


class OpenAIBackend:
    """``MODEL`` behind an OpenAI-compatible server (see the module docstring for what it can do)."""

    is_seq2seq = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        chat: bool = False,
        api_key: str | None = None,
        max_retries: int | None = None,
        timeout: float = TIMEOUT_S,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise HeedfulError(f"{API_PREFIX}{model} needs the openai package: pip install 'heedful[api]'") from None
        if not model:
            raise HeedfulError(f"model.name '{API_PREFIX}' names no model: use {API_PREFIX}MODEL")
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or DUMMY_KEY,
            max_retries=MAX_RETRIES if max_retries is None else max_retries,
            timeout=timeout,
        )
        self.remote_model = model
        self.name = API_PREFIX + model
        self.chat = chat
        # The server applies the chat template: the evaluation must not wrap prompts here.
        self.chat_on_server = chat
        self.url = str(self.client.base_url).rstrip("/")
        self.model = _Remote(self.name, "weights")
        self.tokenizer = _Remote(self.name, "tokenizer")
        self.truncation = "error"  # the server refuses a prompt longer than its context
        self.truncation_count = 0

    @property
    def max_length(self) -> int:
        """Unknown here: the server refuses a prompt that does not fit its context (its error names the limit)."""
        return 2**31 - 1

    # ------------------------------------------------------------------ requests
    def _request(self, create: Callable[..., Any], **kwargs: Any) -> Any:
        """One API call; the client's final failure (after its retries) as one HeedfulError line."""
        openai = self._openai
        try:
            return create(model=self.remote_model, **kwargs)
        except openai.APIConnectionError as err:  # refused, reset, timed out
            cause = err.__cause__ or err
            raise HeedfulError(f"cannot reach {self.url}: {cause} (is the server running?)") from None
        except openai.APIStatusError as err:
            body = err.body.get("message", err.body) if isinstance(err.body, dict) else err.body
            raise HeedfulError(f"{self.url} answered {err.status_code} for model {self.remote_model}: {body}") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise HeedfulError(f"{self.url} returned a malformed reply: {err}") from None

    def _malformed(self, what: str) -> NoReturn:
        raise HeedfulError(f"{self.url} returned a malformed reply: {what}")

    def _run(
        self, calls: Sequence[Callable[[], R]], workers: int, done: Callable[[int], None] | None = None
    ) -> list[R]:
        """Run ``calls`` ``workers`` at a time; results in input order. The first failure stops the rest."""
        if workers < 1:
            raise HeedfulError(f"batch_size must be at least 1, not {workers}")
        results: list[Any] = [None] * len(calls)
        with ThreadPoolExecutor(max_workers=min(workers, max(len(calls), 1))) as pool:
            futures = {pool.submit(call): i for i, call in enumerate(calls)}
            for future in as_completed(futures):
                try:
                    results[futures[future]] = future.result()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)  # requests in flight end first
                    raise
                if done is not None:
                    done(futures[future])
        return results

    # ------------------------------------------------------------------ scoring
    def loglikelihoods(
        self,
        requests: Sequence[ChoiceRequest],
        *,
        batch_size: int = 8,
        memory_budget_mb: float | None = None,
        progress: Progress | None = None,
    ) -> list[ChoiceScores]:
        """Summed log-probability of every continuation of every request, from the server's echoed prompt.

        ``memory_budget_mb`` is accepted for the protocol and unused: the server holds the memory.
        """
        if self.chat:
            raise HeedfulError(
                f"{self.name}: rank classification needs the completions endpoint; chat completions return no prompt "
                "log-probabilities (drop --model.chat)"
            )
        calls, owner = [], []
        for i, req in enumerate(requests):
            if not req.continuations:
                raise HeedfulError(f"request {i}: no options to score")
            for continuation in req.continuations:
                calls.append(lambda i=i, c=continuation: self._score_option(requests[i].context, c, i))
                owner.append(i)
        left = [len(req.continuations) for req in requests]

        def done(call: int) -> None:
            left[owner[call]] -= 1
            if progress is not None and left[owner[call]] == 0:
                progress(1)

        flat = iter(self._run(calls, batch_size, done))
        out = []
        for req in requests:
            scores = [next(flat) for _ in req.continuations]
            out.append(ChoiceScores(
                logliks=tuple(s[0] for s in scores),
                n_tokens=tuple(s[1] for s in scores),
                is_greedy=tuple(s[2] for s in scores),
                n_chars=tuple(len(c) for c in req.continuations),
            ))
        return out

    def _score_option(self, context: str, continuation: str, i: int) -> tuple[float, int, bool]:
        # Trailing whitespace of the context belongs to the option (lm-eval's encoding).
        _, tail = move_trailing_whitespace(context, continuation)
        reply = self._request(
            self.client.completions.create,
            prompt=context + continuation, max_tokens=1, temperature=0, echo=True, logprobs=1,
        )
        try:
            choice = reply.choices[0]
            logprobs = choice.logprobs
            usage = getattr(reply, "usage", None)
            n_prompt = getattr(usage, "prompt_tokens", None)
        except (AttributeError, IndexError, TypeError):
            self._malformed("no choices[0] in a completion")
        fields = ("tokens", "token_logprobs", "text_offset", "top_logprobs")
        if logprobs is None or any(getattr(logprobs, f, None) is None for f in fields):
            raise HeedfulError(NEEDS_ECHO.format(url=self.url))
        try:
            return echo_scores(
                logprobs.tokens, logprobs.token_logprobs, logprobs.text_offset, logprobs.top_logprobs,
                n_prompt=n_prompt, n_chars=len(tail),
            )
        except ValueError as err:
            where = f"request {i} option {continuation!r}"
            raise HeedfulError(f"{where}: {self.url} gave unusable log-probabilities: {err}") from None

    def option_probabilities_after_generation(self, requests: Sequence[ChoiceRequest], **kwargs: Any) -> NoReturn:
        raise HeedfulError(
            f"{self.name}: Sun et al. scoring (--scoring.rank sun) needs every option token's probability at each "
            "generated step, which an API does not give; use --scoring.rank sum or mean, or a local model"
        )

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 128,
        stop: Sequence[str] = (),
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> list[str]:
        """Greedy continuations of ``prompts`` (new text only), each cut at its first stop string once begun."""
        stops = [s for s in stop if s]
        calls = [lambda p=p: self._generate_one(p, max_new_tokens, stops) for p in prompts]
        return self._run(calls, batch_size, None if progress is None else (lambda _: progress(1)))

    def _generate_one(self, prompt: str, max_new_tokens: int, stops: list[str]) -> str:
        text, finish = self._complete(prompt, max_new_tokens, stops[:MAX_STOPS])
        if stops and finish == "stop" and not text.strip():
            # A stop string before the answer began (an instruct model's leading newline): ask
            # for the whole answer and let the local rule find where it ends.
            text, _ = self._complete(prompt, max_new_tokens, [])
        return cut_at_stop(text, stops)

    def _complete(self, prompt: str, max_new_tokens: int, stops: list[str]) -> tuple[str, str | None]:
        """(text, finish reason) of one greedy request."""
        extra: dict[str, Any] = {"stop": stops} if stops else {}
        if self.chat:
            reply = self._request(
                self.client.chat.completions.create,
                messages=[{"role": "user", "content": prompt}], max_tokens=max_new_tokens, temperature=0, **extra,
            )
            try:
                choice = reply.choices[0]
                text = choice.message.content
            except (AttributeError, IndexError, TypeError):
                self._malformed("no choices[0].message in a chat completion")
        else:
            reply = self._request(
                self.client.completions.create, prompt=prompt, max_tokens=max_new_tokens, temperature=0, **extra
            )
            try:
                choice = reply.choices[0]
                text = choice.text
            except (AttributeError, IndexError, TypeError):
                self._malformed("no choices[0].text in a completion")
        if not isinstance(text, str):
            self._malformed(f"the answer is {type(text).__name__}, not text")
        return text, getattr(choice, "finish_reason", None)

    # ------------------------------------------------------------------ representations
    def first_token_hidden_states(self, prompts: Sequence[str], *, layer: int = -1, batch_size: int = 8) -> np.ndarray:
        raise HeedfulError(
            f"{self.name}: hidden states are not available from a model behind an API; "
            "representations need a local model"
        )


def echo_scores(
    tokens: Sequence[str],
    token_logprobs: Sequence[float | None],
    text_offset: Sequence[int],
    top_logprobs: Sequence[dict[str, float] | None],
    *,
    n_prompt: int | None,
    n_chars: int,
) -> tuple[float, int, bool]:
    """(summed log-probability, token count, is_greedy) of the last ``n_chars`` characters of an echoed prompt.

    ``n_prompt``: how many of the tokens are the prompt's (the reply's
    ``usage.prompt_tokens``); None assumes one generated token after them, as lm-eval.
    The option's tokens are the prompt tokens that start at or after the prompt's end
    less ``n_chars``, in the offsets' own frame (which may count a BOS's text).
    """
    n = len(tokens)
    if not len(token_logprobs) == len(text_offset) == len(top_logprobs) == n:
        raise ValueError("tokens, token_logprobs, text_offset and top_logprobs differ in length")
    n_prompt = n - 1 if n_prompt is None else n_prompt
    if not 0 < n_prompt <= n:
        raise ValueError(f"{n_prompt} prompt tokens among {n} tokens")
    if any(b < a for a, b in zip(text_offset, text_offset[1:])):
        raise ValueError("text_offset decreases")
    end = text_offset[n_prompt - 1] + len(tokens[n_prompt - 1])
    start = next((k for k in range(n_prompt) if text_offset[k] >= end - n_chars), n_prompt)
    if start == n_prompt:
        raise ValueError("the option has no token of its own (it merged into the context's last token)")
    total, greedy = 0.0, True
    for k in range(start, n_prompt):
        logprob, top = token_logprobs[k], top_logprobs[k]
        if logprob is None:
            raise ValueError("an option token has no log-probability (an empty context needs a server that adds BOS)")
        if not top:
            raise ValueError("an option token has no top_logprobs")
        total += float(logprob)
        greedy = greedy and float(logprob) >= max(top.values())
    return total, n_prompt - start, greedy
