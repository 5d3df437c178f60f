"""CausalBackend against plain, unbatched transformers forward passes on a tiny random Llama."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch

from heedful.errors import HeedfulError
from heedful.models import ChoiceRequest, hf_causal
from heedful.models.hf_causal import CausalBackend

REQUESTS = [
    ChoiceRequest("Q: Which of the following is a fruit? A:", (" apple", " chair", " river of the lazy dog")),
    ChoiceRequest("The answer is ", ("yes", "no")),
    ChoiceRequest("Is the following statement true or false? Water boils.\nAnswer:", (" true", " false")),
    ChoiceRequest("Pick one category", (" sports", " politics", " science", " quick brown fox")),
    ChoiceRequest("Translate", (" Le chat est noir.",)),
]


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's _encode_pair for a causal model without BOS, written out independently."""
    stripped = context.rstrip()
    continuation = context[len(stripped) :] + continuation
    whole = tokenizer.encode(stripped + continuation, add_special_tokens=False)
    ctx = tokenizer.encode(stripped, add_special_tokens=False)
    return ctx, whole[len(ctx) :]


def reference_scores(model, tokenizer, request: ChoiceRequest, ctx_budget: int | None = None):
    """Each option on its own, one unpadded forward over context + continuation."""
    logliks, greedy = [], []
    for option in request.continuations:
        ctx, cont = encode_pair(tokenizer, request.context, option)
        if ctx_budget is not None:
            ctx = ctx[-ctx_budget:]
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
        rows = logp[len(ctx) - 1 : len(ctx) - 1 + len(cont)]
        logliks.append(sum(float(rows[k, t]) for k, t in enumerate(cont)))
        greedy.append(all(int(rows[k].argmax()) == t for k, t in enumerate(cont)))
    return logliks, greedy


def reference_greedy(model, ids: list[int], max_new_tokens: int, eos: int) -> tuple[list[int], list[torch.Tensor]]:
    """Unbatched greedy decoding without a cache; also returns each step's probabilities."""
    new, probs = [], []
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(torch.tensor([ids + new])).logits[0, -1]
        probs.append(torch.softmax(logits.double(), dim=-1))
        token = int(logits.argmax())
        new.append(token)
        if token == eos:
            break
    return new, probs


def test_shared_prompt_scores_equal_full_forward(causal: CausalBackend) -> None:
    results = causal.loglikelihoods(REQUESTS, batch_size=4)
    assert causal.shared_prefix
    for req, res in zip(REQUESTS, results):
        logliks, greedy = reference_scores(causal.model, causal.tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)
        assert list(res.is_greedy) == greedy
        assert res.n_tokens == tuple(len(encode_pair(causal.tokenizer, req.context, o)[1]) for o in req.continuations)
        assert res.n_chars == tuple(len(o) for o in req.continuations)


def test_llama_takes_the_shared_prompt_path_without_warning(causal_tokenizer, tiny_llama, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="heedful.models"):
        backend = CausalBackend(tiny_llama(len(causal_tokenizer)), causal_tokenizer, name="tiny-llama")
    assert backend.shared_prefix and backend._cache_keyword in ("cache", "past_key_values")
    assert not caplog.records


class _CacheIgnored(torch.nn.Module):
    """A forward that takes any keyword and silently ignores the cache: the fast path must not trust it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None, **kwargs):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache)


def test_a_model_that_ignores_the_cache_is_scored_per_option_with_one_warning(
    causal_tokenizer, tiny_llama, caplog, monkeypatch
) -> None:
    model = _CacheIgnored(tiny_llama(len(causal_tokenizer)))
    monkeypatch.setattr(hf_causal, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="heedful.models"):
        backend = CausalBackend(model, causal_tokenizer, name="ignores-cache")
        CausalBackend(model, causal_tokenizer, name="again")  # a second backend in the run: no second warning
        results = backend.loglikelihoods(REQUESTS, batch_size=4)
    assert not backend.shared_prefix
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("scoring one sequence per option (slower): ") and "cache" in warning
    for req, res in zip(REQUESTS, results):
        logliks, _ = reference_scores(model.inner, causal_tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)


def test_scores_do_not_depend_on_batching_or_order(causal: CausalBackend) -> None:
    base = causal.loglikelihoods(REQUESTS, batch_size=1)
    for batch_size in (2, 5):
        again = causal.loglikelihoods(REQUESTS, batch_size=batch_size)
        for a, b in zip(base, again):
            np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)
    order = list(range(len(REQUESTS)))
    random.Random(3).shuffle(order)
    shuffled = causal.loglikelihoods([REQUESTS[i] for i in order], batch_size=3)
    for pos, i in enumerate(order):
        np.testing.assert_allclose(shuffled[pos].logliks, base[i].logliks, atol=1e-5, rtol=0)


def test_per_option_path_equals_shared_prompt_path(causal: CausalBackend) -> None:
    shared = causal.loglikelihoods(REQUESTS, batch_size=5)
    causal.shared_prefix = False
    single = causal.loglikelihoods(REQUESTS, batch_size=5)
    for a, b in zip(shared, single):
        np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)
        assert a.is_greedy == b.is_greedy


def test_greedy_continuation_is_flagged(causal: CausalBackend) -> None:
    context = "Q: Which of the following is a fruit? A:"
    ctx = causal.tokenizer.encode(context, add_special_tokens=False)
    with torch.no_grad():
        token = int(causal.model(torch.tensor([ctx])).logits[0, -1].argmax())
    text = causal.tokenizer.decode([token])
    assert encode_pair(causal.tokenizer, context, text)[1] == [token], "precondition: the token round-trips"
    [res] = causal.loglikelihoods([ChoiceRequest(context, (text, " chair"))])
    assert res.is_greedy[0]


def test_progress_counts_every_request(causal: CausalBackend) -> None:
    seen: list[int] = []
    causal.loglikelihoods(REQUESTS, batch_size=2, progress=seen.append)
    assert sum(seen) == len(REQUESTS)


def test_long_prompts_are_left_truncated_with_warning(causal_tokenizer, tiny_llama, caplog: pytest.LogCaptureFixture) -> None:
    backend = CausalBackend(tiny_llama(len(causal_tokenizer)), causal_tokenizer, name="t", max_length=16)
    long_req = ChoiceRequest("The quick brown fox jumps over the lazy dog. " * 3 + "Answer:", (" yes", " no"))
    with caplog.at_level(logging.WARNING, logger="heedful.models"):
        [res, short] = backend.loglikelihoods([long_req, REQUESTS[1]])
    assert backend.truncation_count == 1
    assert "left-truncated" in caplog.text
    longest = max(len(encode_pair(causal_tokenizer, long_req.context, o)[1]) for o in long_req.continuations)
    logliks, _ = reference_scores(backend.model, causal_tokenizer, long_req, ctx_budget=16 + 1 - longest)
    np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)


def test_truncation_error_mode_refuses_long_prompts(causal_tokenizer, tiny_llama) -> None:
    backend = CausalBackend(
        tiny_llama(len(causal_tokenizer)), causal_tokenizer, name="t", max_length=16, truncation="error"
    )
    long_req = ChoiceRequest("The quick brown fox jumps over the lazy dog. " * 3, ("yes",))
    with pytest.raises(HeedfulError, match="request 1: prompt is .* tokens"):
        backend.loglikelihoods([REQUESTS[1], long_req])
    assert backend.truncation_count == 0


def test_out_of_memory_halves_the_batch(causal: CausalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = causal.loglikelihoods(REQUESTS, batch_size=1)
    real = causal._score_shared_prefix
    sizes: list[int] = []

    def flaky(batch):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(batch)

    monkeypatch.setattr(causal, "_score_shared_prefix", flaky)
    got = causal.loglikelihoods(REQUESTS, batch_size=4)
    assert sizes[:3] == [4, 2, 1]
    assert max(sizes[3:]) == 1
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)


def test_out_of_memory_at_batch_one_and_other_errors_propagate(causal: CausalBackend, monkeypatch) -> None:
    def oom(batch):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate... out of memory")

    monkeypatch.setattr(causal, "_score_shared_prefix", oom)
    with pytest.raises(RuntimeError, match="out of memory"):
        causal.loglikelihoods(REQUESTS, batch_size=4)

    def broken(batch):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(causal, "_score_shared_prefix", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        causal.loglikelihoods(REQUESTS, batch_size=4)


PROMPTS = ["Q: Which of the following", "The quick brown fox jumps over the lazy", "Is it", "Definition: Classify"]


def test_batched_left_padded_generation_equals_unbatched_greedy(causal: CausalBackend) -> None:
    texts = causal.generate(PROMPTS, max_new_tokens=8, batch_size=4)
    for prompt, text in zip(PROMPTS, texts):
        ids = causal.tokenizer.encode(prompt, add_special_tokens=False)
        new, _ = reference_greedy(causal.model, ids, 8, causal.tokenizer.eos_token_id)
        assert text == causal.tokenizer.decode(new, skip_special_tokens=True)


def test_generation_is_cut_at_the_first_stop_string(causal: CausalBackend) -> None:
    full = causal.generate(PROMPTS, max_new_tokens=12, batch_size=1)
    # Stop strings taken from the outputs themselves, so every cut is exercised.
    stops = sorted({t[3:5] for t in full if len(t) >= 5 and t[3:5].isascii()})
    assert stops, "precondition: some generation is long enough to hold a stop string"
    cut = causal.generate(PROMPTS, max_new_tokens=12, stop=stops, batch_size=4)
    for text, short in zip(full, cut):
        start = len(text) - len(text.lstrip())  # stops count only once the answer has begun
        positions = [p for p in (text.find(s, start) for s in stops) if p >= 0]
        assert short == (text[: min(positions)] if positions else text)


def test_stop_strings_end_the_answer_not_the_whitespace_before_it(causal_tokenizer) -> None:
    from heedful.models.backend import _AnswerStop, _cut_at_stop

    assert _cut_at_stop("\nyes\nmore", ["\n"]) == "\nyes"
    assert _cut_at_stop("  no", ["\n"]) == "  no"
    assert _cut_at_stop("a.b", [".", "b"]) == "a"
    prompt = causal_tokenizer.encode("Q:", add_special_tokens=False)
    stop = _AnswerStop(causal_tokenizer, ["\n"], prompt_len=len(prompt), is_seq2seq=False)
    for answer, done in (("\n", False), ("\n yes", False), ("\n yes\n", True), ("yes\n", True)):
        row = torch.tensor([prompt + causal_tokenizer.encode(answer, add_special_tokens=False)])
        assert stop(row, None).tolist() == [done], answer


def test_hidden_states_are_the_last_prompt_tokens(causal: CausalBackend) -> None:
    for layer in (-1, -2, 0):
        states = causal.first_token_hidden_states(PROMPTS, layer=layer, batch_size=3)
        assert states.shape == (len(PROMPTS), causal.model.config.hidden_size)
        for prompt, row in zip(PROMPTS, states):
            ids = torch.tensor([causal.tokenizer.encode(prompt, add_special_tokens=False)])
            with torch.no_grad():
                direct = causal.model(ids, output_hidden_states=True).hidden_states[layer][0, -1]
            np.testing.assert_allclose(row, direct.numpy(), atol=1e-5, rtol=0)
    with pytest.raises(HeedfulError, match="layer 7 out of range"):
        causal.first_token_hidden_states(PROMPTS, layer=7)


def test_sun_option_probabilities_follow_the_greedy_steps(causal: CausalBackend) -> None:
    requests = [REQUESTS[0], REQUESTS[3], ChoiceRequest("Is it", ("true or false", "yes"))]
    got = causal.option_probabilities_after_generation(requests, batch_size=3)
    for req, probs in zip(requests, got):
        options = [causal.tokenizer.encode(o, add_special_tokens=False) for o in req.continuations]
        n = min(len(o) for o in options)
        ids = causal.tokenizer.encode(req.context, add_special_tokens=False)
        new, steps = reference_greedy(causal.model, ids, n, causal.tokenizer.eos_token_id)
        n = min(n, len(new))
        expected = [float(np.prod([steps[k][o[k]] for k in range(n)])) for o in options]
        np.testing.assert_allclose(probs, expected, rtol=1e-4)
    again = causal.option_probabilities_after_generation(requests, batch_size=1)
    for a, b in zip(got, again):
        np.testing.assert_allclose(a, b, rtol=1e-4)
