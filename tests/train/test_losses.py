from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from heedful.train.data import Collator, TrainExample, tokenize_example
from heedful.train.losses import (
    alignment_loss,
    full_output_logits,
    group_kl,
    kl_divergence,
    labelled_counts,
    naive_ce,
    output_logits,
    output_token_ce,
)
from heedful.train.methods import MethodConfig, apply_method

PAIRS = [
    ("Definition: Classify the sentence. Input: I loved it. Output: ", "positive"),
    ("Is the following statement true or false? Answer: ", "true"),
    ("Translate the sentence into French. Output: ", "Le chat est noir."),
]


def _batch(tokenizer, seq2seq):
    feats = [tokenize_example(TrainExample("t", str(i), s, t), tokenizer, is_seq2seq=seq2seq) for i, (s, t) in enumerate(PAIRS)]
    return Collator(pad_token_id=tokenizer.pad_token_id, is_seq2seq=seq2seq)(feats)


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_output_only_ce_equals_full_logits_ce(arch, causal_tokenizer, t5_tokenizer, tiny_llama, tiny_t5):
    seq2seq = arch == "t5"
    tokenizer = t5_tokenizer if seq2seq else causal_tokenizer
    model = (tiny_t5 if seq2seq else tiny_llama)(len(tokenizer)).eval()  # no dropout: same forward twice
    batch = _batch(tokenizer, seq2seq)
    mine, n = output_token_ce(model, batch, is_seq2seq=seq2seq)
    reference = naive_ce(model, batch)
    expected_n = int((batch["labels"] != -100).sum()) - (0 if seq2seq else int((batch["labels"][:, 0] != -100).sum()))
    assert n == expected_n
    torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)
    # the gradients agree too
    g1 = torch.autograd.grad(mine, [p for p in model.parameters()], allow_unused=True)
    g2 = torch.autograd.grad(naive_ce(model, batch), [p for p in model.parameters()], allow_unused=True)
    for a, b in zip(g1, g2):
        if a is not None or b is not None:
            # float32 summation order differs; compare against the gradient's own scale
            assert float((a - b).abs().max()) <= 1e-3 * float(b.abs().max()) + 1e-7


@pytest.mark.parametrize("method", ["prompt", "prefix", "lora"])
def test_output_only_ce_matches_peft_model_loss(method, causal_tokenizer, tiny_llama):
    model = apply_method(tiny_llama(len(causal_tokenizer)), MethodConfig(name=method), is_seq2seq=False).eval()
    batch = _batch(causal_tokenizer, False)
    mine, _ = output_token_ce(model, batch, is_seq2seq=False)
    torch.testing.assert_close(mine, model(**batch).loss, rtol=1e-5, atol=1e-6)


def test_num_items_divides_the_token_sum(causal_tokenizer, tiny_llama):
    model = tiny_llama(len(causal_tokenizer))
    batch = _batch(causal_tokenizer, False)
    mean, n = output_token_ce(model, batch, is_seq2seq=False)
    summed, _ = output_token_ce(model, batch, is_seq2seq=False, num_items=1)
    torch.testing.assert_close(summed, mean * n)


def test_kl_divergence_matches_torch_and_alignment_mixes():
    torch.manual_seed(0)
    p, q = torch.randn(5, 11), torch.randn(5, 11)
    reference = F.kl_div(F.log_softmax(q, -1), F.log_softmax(p, -1), log_target=True, reduction="batchmean")
    torch.testing.assert_close(kl_divergence(p, q), reference)
    assert float(kl_divergence(p, p)) == pytest.approx(0.0, abs=1e-6)
    ce, kl = torch.tensor(2.0), torch.tensor(4.0)
    assert float(alignment_loss(ce, kl, 0.25)) == pytest.approx(0.75 * 2 + 0.25 * 4)
    with pytest.raises(ValueError):
        alignment_loss(ce, kl, 1.5)


def test_output_logits_shape(causal_tokenizer, tiny_llama):
    model = tiny_llama(len(causal_tokenizer))
    batch = _batch(causal_tokenizer, False)
    logits, labels = output_logits(model, batch, is_seq2seq=False)
    assert logits.shape == (labels.shape[0], len(causal_tokenizer)) and logits.dtype == torch.float32


@pytest.mark.parametrize("arch, method", [("llama", "full"), ("llama", "prompt"), ("t5", "full")])
def test_full_output_logits_equal_the_head_at_labelled_positions(
    arch, method, causal_tokenizer, t5_tokenizer, tiny_llama, tiny_t5
):
    seq2seq = arch == "t5"
    tokenizer = t5_tokenizer if seq2seq else causal_tokenizer
    model = apply_method((tiny_t5 if seq2seq else tiny_llama)(len(tokenizer)), MethodConfig(name=method), is_seq2seq=seq2seq).eval()
    batch = _batch(tokenizer, seq2seq)
    logits, labels = output_logits(model, batch, is_seq2seq=seq2seq)
    full, full_labels = full_output_logits(model, batch, is_seq2seq=seq2seq)
    assert torch.equal(labels, full_labels)
    torch.testing.assert_close(full, logits, rtol=1e-5, atol=1e-5)
    assert sum(labelled_counts(batch["labels"], is_seq2seq=seq2seq)) == labels.numel()


def test_group_kl_averages_paraphrases_and_sums_groups():
    torch.manual_seed(0)
    counts = [2, 2, 2, 3, 3, 1]
    logits = torch.randn(sum(counts), 7)
    rows = torch.split(logits, counts)
    groups = [[0, 1, 2], [3, 4], [5]]  # the last group has no paraphrase: no term
    expected = (kl_divergence(rows[1], rows[0]) + kl_divergence(rows[2], rows[0])) / 2 + kl_divergence(rows[4], rows[3])
    torch.testing.assert_close(group_kl(logits, counts, groups), expected)
    assert float(group_kl(logits, counts, [[1, 0]])) != pytest.approx(float(group_kl(logits, counts, [[0, 1]])))
    with pytest.raises(ValueError, match="different target lengths"):
        group_kl(logits, counts, [[0, 3]])
