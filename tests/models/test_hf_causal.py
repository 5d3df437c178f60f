"""CausalBackend against plain, unbatched transformers forward passes on a tiny random Llama."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import pytest
import torch

from heedful.errors import HeedfulError
from heedful.models import ChoiceRequest, hf_causal
from heedful.models.hf_causal import CausalBackend
from heedful.models.prefixes import MIN_SHARED_PREFIX, shared_prefixes

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

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.inner.get_output_embeddings()

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None, **kwargs):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache)


class _MaskIgnored(_CacheIgnored):
    """A forward that drops a 4D attention mask (as a model with its own mask code might): no packing."""

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None, **kwargs):
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = None
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache)


def test_a_model_that_ignores_the_cache_packs_without_sharing_prefixes_with_one_warning(
    causal_tokenizer, tiny_llama, caplog, monkeypatch
) -> None:
    model = _CacheIgnored(tiny_llama(len(causal_tokenizer)))
    monkeypatch.setattr(hf_causal, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="heedful.models"):
        backend = CausalBackend(model, causal_tokenizer, name="ignores-cache")
        CausalBackend(model, causal_tokenizer, name="again")  # a second backend in the run: no second warning
        results = backend.loglikelihoods(SHARED_REQUESTS, batch_size=4)
    assert backend.shared_prefix and backend._cache_keyword is None
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("prompts share no prefix across instances (slower): ") and "cache" in warning
    assert backend.tokens.prompt_run == backend.tokens.prompt
    for req, res in zip(SHARED_REQUESTS, results):
        logliks, _ = reference_scores(model.inner, causal_tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)


def test_a_model_that_ignores_the_packed_mask_is_scored_per_option_with_one_warning(
    causal_tokenizer, tiny_llama, caplog, monkeypatch
) -> None:
    model = _MaskIgnored(tiny_llama(len(causal_tokenizer)))
    monkeypatch.setattr(hf_causal, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="heedful.models"):
        backend = CausalBackend(model, causal_tokenizer, name="ignores-mask")
        CausalBackend(model, causal_tokenizer, name="again")
        results = backend.loglikelihoods(REQUESTS, batch_size=4)
    assert not backend.shared_prefix
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("scoring one sequence per option (slower): ") and "4D attention mask" in warning
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
    real = causal._score_packed
    sizes: list[int] = []

    def flaky(batch, **prefix):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(batch, **prefix)

    monkeypatch.setattr(causal, "_score_packed", flaky)
    got = causal.loglikelihoods(REQUESTS, batch_size=4)
    assert sizes[:3] == [4, 2, 1]
    assert max(sizes[3:]) == 1
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)


def test_out_of_memory_at_batch_one_and_other_errors_propagate(causal: CausalBackend, monkeypatch) -> None:
    def oom(batch, **prefix):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate... out of memory")

    monkeypatch.setattr(causal, "_score_packed", oom)
    with pytest.raises(RuntimeError, match="out of memory"):
        causal.loglikelihoods(REQUESTS, batch_size=4)

    def broken(batch, **prefix):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(causal, "_score_packed", broken)
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
    from heedful.models.backend import _AnswerStop
    from heedful.models.stops import cut_at_stop

    assert cut_at_stop("\nyes\nmore", ["\n"]) == "\nyes"
    assert cut_at_stop("  no", ["\n"]) == "  no"
    assert cut_at_stop("a.b", [".", "b"]) == "a"
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


# ------------------------------------------------------------- prefixes shared across prompts
# Two phrasings that share a long header, a third apart, each over several inputs: a
# robustness study in small. Also prompts that are prefixes of others, a one-token prompt and
# options of one and several tokens.
PHRASINGS = [
    "In this task, you are given a question and you have to pick the correct option.\n",
    "In this task, you are given a question and you have to pick the best option.\n",
    "Pick one category for the following text. The options are sports, politics, science.\n",
]
INPUTS = ["Is it true?", "Water boils.", "The quick brown fox", "Q: Which of the following is a fruit?"]
OPTIONS = [(" yes", " no"), (" the lazy dog", " apple", " river"), (" true",)]
SHARED_REQUESTS = [
    ChoiceRequest(phrasing + text + "\nA:", OPTIONS[(i + k) % len(OPTIONS)])
    for i, phrasing in enumerate(PHRASINGS)
    for k, text in enumerate([*INPUTS, ""])
] + [
    ChoiceRequest(PHRASINGS[0].rstrip(), (" yes", " the answer is no")),  # a prefix of the first phrasing's prompts
    ChoiceRequest(PHRASINGS[0] + "Is it", (" true", " false")),  # a prefix of one prompt
    ChoiceRequest("I", (" yes", "n the lazy dog")),  # one context token
]


def test_prompts_sharing_a_prefix_score_as_each_alone(causal: CausalBackend) -> None:
    ctxs = [w.ctx for w in causal._encode_requests(SHARED_REQUESTS, context_budget=lambda _: 10**6)]
    groups = shared_prefixes(ctxs)
    assert sum(1 for shared, _ in groups if shared) >= 3, "precondition: prompts share prefixes, in several groups"
    assert len({shared for shared, _ in groups}) >= 3, "precondition: prefixes of several lengths"
    got = causal.loglikelihoods(SHARED_REQUESTS, batch_size=3)
    assert causal.tokens.prompt_run < causal.tokens.prompt
    for req, res in zip(SHARED_REQUESTS, got):
        logliks, greedy = reference_scores(causal.model, causal.tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)
        assert list(res.is_greedy) == greedy
    order = list(range(len(SHARED_REQUESTS)))
    random.Random(1).shuffle(order)
    for batch_size in (1, 4, 64):
        again = causal.loglikelihoods([SHARED_REQUESTS[i] for i in order], batch_size=batch_size)
        for pos, i in enumerate(order):
            np.testing.assert_allclose(again[pos].logliks, got[i].logliks, atol=1e-5, rtol=0)
            assert again[pos].is_greedy == got[i].is_greedy
    causal.shared_prefix = False
    for a, b in zip(causal.loglikelihoods(SHARED_REQUESTS, batch_size=3), got):
        np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)
        assert a.is_greedy == b.is_greedy


def test_left_truncated_prompts_share_what_is_left(causal_tokenizer, tiny_llama) -> None:
    backend = CausalBackend(tiny_llama(len(causal_tokenizer)), causal_tokenizer, name="t", max_length=24)
    got = backend.loglikelihoods(SHARED_REQUESTS, batch_size=4)
    assert backend.truncation_count >= len(PHRASINGS) * len(INPUTS)
    for req, res in zip(SHARED_REQUESTS, got):
        longest = max(len(encode_pair(causal_tokenizer, req.context, o)[1]) for o in req.continuations)
        logliks, greedy = reference_scores(backend.model, causal_tokenizer, req, ctx_budget=24 + 1 - longest)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)
        assert list(res.is_greedy) == greedy


def test_token_counts_run_a_shared_instruction_once(causal: CausalBackend) -> None:
    requests = [ChoiceRequest(PHRASINGS[2] + text + "\nA:", OPTIONS[k]) for k, text in enumerate(INPUTS[:3])]
    encoded = causal._encode_requests(requests, context_budget=lambda _: 10**6)
    ctxs = [w.ctx for w in encoded]
    shared = len(os.path.commonprefix(ctxs))
    assert shared >= MIN_SHARED_PREFIX, "precondition: the instruction is long enough to share"
    causal.loglikelihoods(requests)
    tails = sum(len(c) - 1 for w in encoded for c in w.conts)
    assert causal.tokens == hf_causal.TokenCounts(
        prompt=sum(map(len, ctxs)), prompt_run=sum(map(len, ctxs)) - 2 * shared, tails=tails
    )
    causal.shared_prefix = False
    causal.loglikelihoods(requests)
    per_option = sum(len(w.ctx) * len(w.conts) for w in encoded)
    assert causal.tokens.prompt_run == sum(map(len, ctxs)) - 2 * shared + per_option


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_batches_keep_to_the_memory_budget(causal: CausalBackend, monkeypatch, shared_prefix: bool) -> None:
    causal.shared_prefix = shared_prefix
    run_batch = "_score_packed" if shared_prefix else "_score_per_option"
    real = getattr(causal, run_batch)
    batches: list[tuple[list, int]] = []

    def spy(batch, **prefix):
        batches.append((batch, prefix.get("shared", 0)))
        return real(batch, **prefix)

    def cost(w, shared):
        return causal._scoring_bytes(w, shared=shared, per_option=not shared_prefix, batch_size=64)

    monkeypatch.setattr(causal, run_batch, spy)
    encoded = causal._encode_requests(SHARED_REQUESTS, context_budget=lambda _: 10**6)
    groups = shared_prefixes([w.ctx for w in encoded]) if shared_prefix else [(0, range(len(encoded)))]
    budget = 2 * max(cost(encoded[i], shared) for shared, idx in groups for i in idx)
    expected = causal.loglikelihoods(SHARED_REQUESTS, batch_size=64)
    unbounded = len(batches)
    batches.clear()
    got = causal.loglikelihoods(SHARED_REQUESTS, batch_size=64, memory_budget_mb=budget / 2**20)
    assert max(len(b) for b, _ in batches) >= 2, "precondition: the budget allows batches of several prompts"
    assert unbounded < len(batches) < len(SHARED_REQUESTS)
    for batch, shared in batches:
        assert len(batch) * max(cost(w, shared) for w in batch) <= budget
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)
        assert a.is_greedy == b.is_greedy


def test_sliding_window_attention_scores_as_each_prompt_alone(causal_tokenizer) -> None:
    # A window far shorter than the prompts: a padded batch's cache would keep padding.
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "Gemma3ForCausalLM"):
        pytest.skip("this transformers has no Gemma 3")
    torch.manual_seed(0)
    config = transformers.Gemma3TextConfig(
        vocab_size=len(causal_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256, sliding_window=6,
        layer_types=["sliding_attention", "full_attention"], initializer_range=0.2, pad_token_id=0, bos_token_id=1,
        eos_token_id=2,
    )
    model = transformers.Gemma3ForCausalLM(config).eval()
    backend = CausalBackend(model, causal_tokenizer, name="tiny-gemma3")
    assert backend.shared_prefix
    got = backend.loglikelihoods(SHARED_REQUESTS, batch_size=4)
    assert backend.tokens.prompt_run < backend.tokens.prompt
    for req, res in zip(SHARED_REQUESTS, got):
        logliks, greedy = reference_scores(model, causal_tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)
        assert list(res.is_greedy) == greedy
    # Decoding does not share prefixes under a sliding window (padding after the prefix would count in it).
    prompts = [r.context for r in SHARED_REQUESTS[:6]]
    for prompt, text in zip(prompts, backend.generate(prompts, max_new_tokens=5, batch_size=3)):
        new, _ = reference_greedy(model, causal_tokenizer.encode(prompt, add_special_tokens=False), 5, 2)
        assert text == causal_tokenizer.decode(new, skip_special_tokens=True)


def test_generation_on_shared_prefixes_equals_each_prompt_alone(causal: CausalBackend) -> None:
    prompts = [r.context for r in SHARED_REQUESTS]
    encoded = causal._fit_prompts(prompts, causal._generation_budget(6))
    groups = list(causal._prompt_groups(encoded, decoding=True))
    assert sum(1 for shared, _, _ in groups if shared) >= 3, "precondition: prompts share prefixes"
    texts = causal.generate(prompts, max_new_tokens=6, batch_size=3)
    for prompt, text in zip(prompts, texts):
        ids = causal.tokenizer.encode(prompt, add_special_tokens=False)
        new, _ = reference_greedy(causal.model, ids, 6, causal.tokenizer.eos_token_id)
        assert text == causal.tokenizer.decode(new, skip_special_tokens=True)
    probs = causal.option_probabilities_after_generation(SHARED_REQUESTS, batch_size=4)
    causal._cache_keyword = None  # no shared prefixes (and model.generate): the same probabilities
    for a, b in zip(probs, causal.option_probabilities_after_generation(SHARED_REQUESTS, batch_size=4)):
        np.testing.assert_allclose(a, b, rtol=1e-4)
