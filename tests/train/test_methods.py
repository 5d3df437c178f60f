from __future__ import annotations

import pytest
import torch

from heedful.errors import HeedfulError
from heedful.train.data import Collator, TrainExample, tokenize_example
from heedful.train.losses import output_token_ce
from heedful.train.methods import MethodConfig, apply_method, is_peft

EXPECTED_MARKER = {"lora": "lora_", "prefix": "prompt_encoder", "prompt": "prompt_encoder"}


def _step(model, tokenizer, seq2seq):
    feats = [
        tokenize_example(TrainExample("t", "0", "Input: I loved it. Output: ", "positive"), tokenizer, is_seq2seq=seq2seq)
    ]
    batch = Collator(pad_token_id=tokenizer.pad_token_id, is_seq2seq=seq2seq)(feats)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    loss, _ = output_token_ce(model, batch, is_seq2seq=seq2seq)
    loss.backward()
    opt.step()


@pytest.mark.parametrize("arch", ["llama", "t5"])
@pytest.mark.parametrize("method", ["lora", "prefix", "prompt"])
def test_peft_method_trains_only_its_parameters(method, arch, causal_tokenizer, t5_tokenizer, tiny_llama, tiny_t5):
    seq2seq = arch == "t5"
    tokenizer = t5_tokenizer if seq2seq else causal_tokenizer
    model = apply_method((tiny_t5 if seq2seq else tiny_llama)(len(tokenizer)), MethodConfig(name=method), is_seq2seq=seq2seq)
    assert is_peft(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(EXPECTED_MARKER[method] in n for n in trainable)
    _step(model.train(), tokenizer, seq2seq)
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        if name in trainable:
            # LoRA's B starts at zero and A gets no gradient on the first step; B moves.
            continue
        assert not changed, f"frozen parameter {name} changed"
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if n in trainable)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert 0 < n_trainable < total


def test_prefix_projection_trains_an_mlp_over_the_prefix(causal_tokenizer, tiny_llama):
    """Sun et al. 2023's PT: prefix tuning reparameterised through an MLP (peft's prefix_projection)."""
    model = apply_method(tiny_llama(len(causal_tokenizer)), MethodConfig(name="prefix", prefix_projection=True),
                         is_seq2seq=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("transform" in n for n in trainable)  # the MLP (peft's PrefixEncoder.transform)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n in trainable}
    _step(model.train(), causal_tokenizer, False)
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if n in trainable)


def test_full_trains_everything(causal_tokenizer, tiny_llama):
    model = apply_method(tiny_llama(len(causal_tokenizer)), MethodConfig(name="full"), is_seq2seq=False)
    assert not is_peft(model)
    assert all(p.requires_grad for p in model.parameters())


def test_unknown_method(causal_tokenizer, tiny_llama):
    with pytest.raises(HeedfulError, match="unknown training method"):
        apply_method(tiny_llama(len(causal_tokenizer)), MethodConfig(name="adapters"), is_seq2seq=False)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing_gives_the_same_gradients(method, causal_tokenizer, tiny_llama):
    from heedful.train.methods import enable_gradient_checkpointing

    example = TrainExample("t", "0", "Input: I loved it. Output: ", "positive")
    feats = [tokenize_example(example, causal_tokenizer, is_seq2seq=False)]
    batch = Collator(pad_token_id=causal_tokenizer.pad_token_id, is_seq2seq=False)(feats)
    grads = []
    for checkpointing in (False, True):
        model = apply_method(
            tiny_llama(len(causal_tokenizer), seed=0), MethodConfig(name=method, lora_dropout=0.0), is_seq2seq=False
        )
        if checkpointing:
            enable_gradient_checkpointing(model)
        model.train()  # transformers checkpoints only in training mode; nothing here is random
        assert any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules()) == checkpointing
        loss, _ = output_token_ce(model, batch, is_seq2seq=False)
        loss.backward()
        grads.append([p.grad for p in model.parameters() if p.requires_grad])
    assert grads[0] and len(grads[0]) == len(grads[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a)
