"""Losses: cross-entropy on output tokens only, and the KL alignment term of Sun et al. 2023.

A 135M model with a 49k vocabulary spends most of a naive training step's memory on the
``(batch, length, vocab)`` logits, yet only target positions carry a loss. The model here
runs as usual up to its output head; a forward pre-hook on the head hands it an empty
slice and keeps the hidden states, and the head is then applied only at positions that
have a label. Going through the model's own ``forward`` keeps every PEFT method working
(prompt tuning prepends virtual tokens, prefix tuning injects key/values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from heedful.models.head import capture_head_input, final_logits, unwrap
from heedful.train.data import IGNORE_INDEX


def output_hidden_and_labels(
    model: Any, batch: dict[str, torch.Tensor], *, is_seq2seq: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``model`` on ``batch``; return (head input at labelled positions, their labels, head).

    Causal labels are shifted here: the hidden state at position t predicts token t+1.
    """
    inner = unwrap(model)
    head = inner.get_output_embeddings()
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with capture_head_input(head) as box:
        if is_seq2seq:
            decoder_input_ids = inner.prepare_decoder_input_ids_from_labels(labels=labels)
            model(**inputs, decoder_input_ids=decoder_input_ids, use_cache=False)
        else:
            model(**inputs, use_cache=False)
    hidden = box["hidden"]
    if is_seq2seq:
        mask = labels != IGNORE_INDEX
        return hidden[mask], labels[mask], head
    # Prompt tuning prepends virtual tokens: the last T positions align with input_ids.
    hidden = hidden[:, -labels.shape[1] :, :]
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    return hidden[:, :-1, :][mask], shifted[mask], head


def output_logits(model: Any, batch: dict[str, torch.Tensor], *, is_seq2seq: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits ``(n_labelled, vocab)`` at labelled positions, and those labels."""
    hidden, labels, head = output_hidden_and_labels(model, batch, is_seq2seq=is_seq2seq)
    logits = final_logits(unwrap(model).config, head(hidden)).float()
    return logits, labels


def full_output_logits(model: Any, batch: dict[str, torch.Tensor], *, is_seq2seq: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`output_logits` from the model's full-vocabulary logits (for FSDP's sharded head)."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if is_seq2seq:
        decoder_input_ids = unwrap(model).prepare_decoder_input_ids_from_labels(labels=labels)
        logits = model(**inputs, decoder_input_ids=decoder_input_ids, use_cache=False).logits
        mask = labels != IGNORE_INDEX
        return logits[mask].float(), labels[mask]
    logits = model(**inputs, use_cache=False).logits[:, -labels.shape[1] :, :]
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    return logits[:, :-1, :][mask].float(), shifted[mask]


def labelled_counts(labels: torch.Tensor, *, is_seq2seq: bool) -> list[int]:
    """Per batch row, how many of :func:`output_logits`' rows it owns (in row order)."""
    positions = labels if is_seq2seq else labels[:, 1:]
    return [int(n) for n in (positions != IGNORE_INDEX).sum(dim=1)]


def output_token_ce(
    model: Any, batch: dict[str, torch.Tensor], *, is_seq2seq: bool, num_items: int | torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """Cross-entropy over output tokens; returns (loss, number of tokens in this batch).

    The loss is the token sum divided by ``num_items`` when given (the token count of a
    whole accumulated step, so accumulation equals one big batch), else the mean.
    """
    logits, labels = output_logits(model, batch, is_seq2seq=is_seq2seq)
    total = F.cross_entropy(logits, labels, reduction="sum")
    n = int(labels.numel())
    denominator = num_items if num_items is not None else max(n, 1)
    return total / denominator, n


def naive_ce(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's own loss on full-vocabulary logits (reference for tests and FSDP)."""
    return model(**batch).loss


def kl_divergence(paraphrased_logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(softmax(paraphrased) || softmax(reference)).

    Both are ``(n_positions, vocab)`` logits at the same target positions, as in Sun et al.
    2023's alignment loss (their sum over positions j becomes a mean so the weight λ does
    not depend on target length).
    """
    log_p = F.log_softmax(paraphrased_logits.float(), dim=-1)
    log_q = F.log_softmax(reference_logits.float(), dim=-1)
    per_position = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
    return per_position.mean() if per_position.numel() else per_position.sum()


def group_kl(logits: torch.Tensor, counts: Sequence[int], groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Sum over groups of the mean over paraphrases of KL(paraphrase ‖ reference).

    ``logits`` are a batch's labelled-position logits (rows of batch row 0, then row 1,
    ...), ``counts`` how many each batch row owns, and each group lists batch rows that
    share one target, its reference instruction first (Sun et al. 2023's L_KL, one term
    per group). Groups of one prompt contribute nothing.
    """
    starts = [0]
    for n in counts:
        starts.append(starts[-1] + n)
    total = logits.new_zeros(())
    for rows in groups:
        if len(rows) < 2:
            continue
        reference = rows[0]
        ref_logits = logits[starts[reference] : starts[reference + 1]]
        terms = []
        for row in rows[1:]:
            if counts[row] != counts[reference]:
                raise ValueError(f"batch rows {row} and {reference} of one group have different target lengths")
            terms.append(kl_divergence(logits[starts[row] : starts[row + 1]], ref_logits))
        total = total + torch.stack(terms).mean()
    return total


def alignment_loss(ce: torch.Tensor, kl: torch.Tensor, lam: float) -> torch.Tensor:
    """Sun et al. 2023: ``L = (1 - λ) · CE + λ · KL(paraphrased ‖ reference)``."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"λ must be in [0, 1], got {lam}")
    return (1.0 - lam) * ce + lam * kl
