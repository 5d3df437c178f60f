"""Seq2SeqBackend against plain, unbatched transformers forward passes on a tiny random T5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heedful.errors import HeedfulError
from heedful.models import ChoiceRequest
from heedful.models.hf_seq2seq import Seq2SeqBackend

REQUESTS = [
    ChoiceRequest("Q: Which of the following is a fruit? A:", (" apple", " chair", " river of the lazy dog")),
    ChoiceRequest("The answer is ", ("yes", "no")),
    ChoiceRequest("Pick one category", (" sports", " politics", " science")),
]
PROMPTS = ["Q: Which of the following", "The quick brown fox jumps over the lazy", "Is it"]


def reference_scores(model, tokenizer, request: ChoiceRequest) -> tuple[list[float], list[bool]]:
    """lm-eval's seq2seq scoring for one option at a time: encoder on the context, labels = option."""
    stripped = request.context.rstrip()
    ctx = tokenizer.encode(stripped)  # with </s>
    logliks, greedy = [], []
    for option in request.continuations:
        cont = tokenizer.encode(request.context[len(stripped) :] + option, add_special_tokens=False)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx]), labels=torch.tensor([cont])).logits[0]
        logp = torch.log_softmax(logits.double(), dim=-1)
        logliks.append(sum(float(logp[k, t]) for k, t in enumerate(cont)))
        greedy.append(all(int(logp[k].argmax()) == t for k, t in enumerate(cont)))
    return logliks, greedy


def reference_greedy(model, ids: list[int], max_new_tokens: int, eos: int, start: int) -> list[int]:
    dec = [start]
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), decoder_input_ids=torch.tensor([dec])).logits[0, -1]
        dec.append(int(logits.argmax()))
        if dec[-1] == eos:
            break
    return dec[1:]


def test_scores_equal_one_option_at_a_time(seq2seq: Seq2SeqBackend) -> None:
    results = seq2seq.loglikelihoods(REQUESTS, batch_size=3)
    for req, res in zip(REQUESTS, results):
        logliks, greedy = reference_scores(seq2seq.model, seq2seq.tokenizer, req)
        np.testing.assert_allclose(res.logliks, logliks, atol=1e-5, rtol=0)
        assert list(res.is_greedy) == greedy
    single = seq2seq.loglikelihoods(REQUESTS[::-1], batch_size=1)[::-1]
    for a, b in zip(results, single):
        np.testing.assert_allclose(a.logliks, b.logliks, atol=1e-5, rtol=0)


def test_long_context_keeps_its_last_tokens(t5_tokenizer, tiny_t5) -> None:
    backend = Seq2SeqBackend(tiny_t5(len(t5_tokenizer)), t5_tokenizer, name="t", max_length=12)
    req = ChoiceRequest("The quick brown fox jumps over the lazy dog. " * 3, ("yes", "no"))
    [res] = backend.loglikelihoods([req])
    assert backend.truncation_count == 1
    ctx = t5_tokenizer.encode(req.context.rstrip())[-12:]
    cont = t5_tokenizer.encode(" yes", add_special_tokens=False)
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([ctx]), labels=torch.tensor([cont])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    assert res.logliks[0] == pytest.approx(sum(float(logp[k, t]) for k, t in enumerate(cont)), abs=1e-5)
    backend.truncation = "error"
    with pytest.raises(HeedfulError, match="request 0: prompt is"):
        backend.loglikelihoods([req])


def test_batched_generation_equals_unbatched_greedy(seq2seq: Seq2SeqBackend) -> None:
    texts = seq2seq.generate(PROMPTS, max_new_tokens=6, batch_size=3)
    for prompt, text in zip(PROMPTS, texts):
        new = reference_greedy(seq2seq.model, seq2seq.tokenizer.encode(prompt), 6, 2, 0)
        assert text == seq2seq.tokenizer.decode(new, skip_special_tokens=True)


def test_hidden_states_are_the_decoder_start_step(seq2seq: Seq2SeqBackend) -> None:
    states = seq2seq.first_token_hidden_states(PROMPTS, layer=-2, batch_size=2)
    assert states.shape == (len(PROMPTS), seq2seq.model.config.d_model)
    for prompt, row in zip(PROMPTS, states):
        with torch.no_grad():
            out = seq2seq.model(
                input_ids=torch.tensor([seq2seq.tokenizer.encode(prompt)]),
                decoder_input_ids=torch.tensor([[0]]),
                output_hidden_states=True,
            )
        np.testing.assert_allclose(row, out.decoder_hidden_states[-2][0, 0].numpy(), atol=1e-5, rtol=0)


def test_sun_scoring_runs_on_seq2seq_options_with_eos(seq2seq: Seq2SeqBackend) -> None:
    [probs] = seq2seq.option_probabilities_after_generation([REQUESTS[1]])
    # "yes</s>" and "no</s>": both options are scored on the same number of greedy steps.
    options = [seq2seq.tokenizer.encode(o) for o in REQUESTS[1].continuations]
    n = min(len(o) for o in options)
    ids = seq2seq.tokenizer.encode(REQUESTS[1].context)
    dec = [0]
    expected = [1.0, 1.0]
    for _ in range(n):
        with torch.no_grad():
            logits = seq2seq.model(input_ids=torch.tensor([ids]), decoder_input_ids=torch.tensor([dec])).logits[0, -1]
        p = torch.softmax(logits.double(), dim=-1)
        step = len(dec) - 1
        expected = [e * float(p[o[step]]) for e, o in zip(expected, options)]
        dec.append(int(logits.argmax()))
        if dec[-1] == 2:
            break
    np.testing.assert_allclose(probs, expected, rtol=1e-4)
