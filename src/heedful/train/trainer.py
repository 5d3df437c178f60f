"""The training loop: output-token cross-entropy, accumulation, checkpoints, resume.

It runs unchanged in one process or under ``accelerate launch`` (DDP, FSDP): the
``Accelerator`` places the model, wraps it for the distributed setting, syncs gradients
and casts for mixed precision. Batching is done here rather than by a prepared
DataLoader so the data order is a pure function of (seed, epoch) that a resumed run
replays exactly; each process takes every ``world``-th batch of the shared order.

Gradient accumulation divides each micro-batch's token-summed loss by the token count of
the whole accumulated step (over all processes), so accumulating N batches gives the
same update as one N-times larger batch, however unevenly the targets are spread.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from heedful.errors import HeedfulError
from heedful.progress import progress_bar
from heedful.store import content_hash
from heedful.train.checkpoint import TrainerState, is_fsdp, latest_checkpoint, load_checkpoint, save_checkpoint
from heedful.train.data import IGNORE_INDEX, Collator, Features, example_length, length_grouped_batches
from heedful.train.losses import (
    alignment_loss,
    full_output_logits,
    group_kl,
    labelled_counts,
    naive_ce,
    output_logits,
    output_token_ce,
)
from heedful.train.methods import enable_gradient_checkpointing, is_gradient_checkpointing, is_peft

log = logging.getLogger("heedful.train")

SCHEDULES: tuple[str, ...] = ("constant", "linear")


@dataclass
class LoopConfig:
    """Optimisation settings; defaults are Tk-Instruct's and Gupta 2023's.

    ``epochs`` passes over the data (or ``max_steps`` optimizer steps, whichever ends
    first); ``batch_size`` is per process; ``schedule`` ``constant`` or ``linear`` decay,
    both after ``warmup_steps`` of linear warm-up; ``save_every`` writes a checkpoint
    every N optimizer steps (one is always written at the end). ``loss`` ``output``
    applies the output head at labelled positions only; ``naive`` uses the model's own
    loss on full logits (needed under FSDP, whose sharded head cannot be called outside
    the model's forward).

    ``activation_checkpoint_every`` recomputes the activations of every N-th decoder
    layer in the backward pass (1: every layer, 0: none). None picks 2 for full
    fine-tuning: with parameters, gradients and AdamW's two moments already four copies
    of the weights, the saved activations set the peak, and recomputing half the layers
    cuts it by over a gigabyte for SmolLM2-135M at 8 x 256 tokens while costing about a
    sixth more compute, which the output-only loss (no head at prompt positions) more
    than pays back. PEFT methods keep every activation (None means 0 there): their
    states are small and their speed is the point. A model that already checkpoints
    (``gradient_checkpointing``) is left as it is.

    ``kl_weight`` is Sun et al. 2023's λ: with instruction groups (one target under a
    reference and paraphrased instructions) the loss is ``(1 - λ)·CE + λ·KL(paraphrase ‖
    reference)``; 0 trains on every prompt with plain cross-entropy.
    """

    learning_rate: float = 5e-5
    epochs: int = 2
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    group_by_length: bool = True
    save_every: int | None = None
    keep_checkpoints: int = 2
    mixed_precision: str = "no"
    loss: str = "output"
    activation_checkpoint_every: int | None = None
    kl_weight: float = 0.0

    def validate(self) -> None:
        if self.schedule not in SCHEDULES:
            raise HeedfulError(f"unknown schedule '{self.schedule}'; expected one of {', '.join(SCHEDULES)}")
        if self.loss not in ("output", "naive"):
            raise HeedfulError(f"unknown loss '{self.loss}'; expected 'output' or 'naive'")
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise HeedfulError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.activation_checkpoint_every is not None and self.activation_checkpoint_every < 0:
            raise HeedfulError(
                f"activation_checkpoint_every must be 0 (off) or more, got {self.activation_checkpoint_every}"
            )
        if self.learning_rate <= 0:
            raise HeedfulError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.kl_weight <= 1.0:
            raise HeedfulError(f"kl_weight must be between 0 and 1, got {self.kl_weight}")


@dataclass
class LoopResult:
    state: TrainerState
    checkpoint: Path
    seconds: float
    resumed_from: Path | None


StepCallback = Callable[[TrainerState], None]


def lr_factor(step: int, total: int, config: LoopConfig) -> float:
    """Learning-rate multiplier for optimizer step ``step`` (0-based) of ``total``."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "linear":
        span = max(1, total - config.warmup_steps)
        return max(0.0, (total - step) / span)
    return 1.0


def make_accelerator(mixed_precision: str = "no", cpu: bool | None = None) -> Any:
    """An ``Accelerator`` for this loop (accumulation is done by the loop itself)."""
    from accelerate import Accelerator

    kwargs: dict[str, Any] = {"mixed_precision": mixed_precision}
    if cpu is not None:
        kwargs["cpu"] = cpu
    return Accelerator(**kwargs)


def data_fingerprint(features: Sequence[Features], groups: Sequence[Sequence[int]] | None = None) -> str:
    """A hash of the tokenised training data (a resume on other data is refused)."""
    data: list[Any] = [[f.input_ids, f.labels] for f in features]
    if groups is not None:
        data.append([list(g) for g in groups])
    return content_hash(data)[:16]


def _window_token_count(features: Sequence[Features], window: Sequence[Sequence[int]], is_seq2seq: bool) -> int:
    count = 0
    for batch in window:
        for i in batch:
            labels = features[i].labels if is_seq2seq else features[i].labels[1:]
            count += sum(1 for t in labels if t != IGNORE_INDEX)
    return count


def _reduce_sum(accelerator: Any, value: int, world: int) -> int:
    if world == 1:
        return value
    return int(accelerator.reduce(torch.tensor(value, device=accelerator.device), "sum").item())


def train_loop(
    model: Any,
    tokenizer: Any,
    features: Sequence[Features],
    config: LoopConfig,
    checkpoint_dir: str | Path,
    *,
    is_seq2seq: bool,
    accelerator: Any = None,
    resume: bool = True,
    on_step: StepCallback | None = None,
    show_progress: bool = True,
    groups: Sequence[Sequence[int]] | None = None,
) -> LoopResult:
    """Train ``model`` on ``features``; checkpoints go to ``checkpoint_dir``.

    ``groups`` (indices into ``features``, reference first) keep the prompts of one
    instance under several instructions in the same batch: batches then hold
    ``batch_size`` groups, and ``config.kl_weight`` > 0 adds the KL alignment term.

    With ``resume`` a run continues from the newest checkpoint in ``checkpoint_dir``
    (weights, optimizer, RNG and data position), so a killed run ends with the same
    weights as an uninterrupted one. A non-finite loss or gradient norm stops the run
    with :class:`HeedfulError` before the update, leaving the last good checkpoint.
    """
    import time

    config.validate()
    if not features:
        raise HeedfulError("no training examples: check the task spec, split and budget")
    checkpoint_dir = Path(checkpoint_dir)
    accelerator = accelerator or make_accelerator(config.mixed_precision)
    use_naive = config.loss == "naive" or is_fsdp(accelerator)
    units = [list(g) for g in groups] if groups is not None else [[i] for i in range(len(features))]
    aligned = config.kl_weight > 0
    if aligned and not any(len(u) > 1 for u in units):
        raise HeedfulError("kl_weight > 0 needs training prompts under at least two instructions per instance")
    world, rank = accelerator.num_processes, accelerator.process_index

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise HeedfulError("the model has no trainable parameters")
    _checkpoint_activations(model, config.activation_checkpoint_every)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = Collator(pad_token_id=pad, is_seq2seq=is_seq2seq)
    lengths = [example_length(f, is_seq2seq) for f in features]
    unit_lengths = [sum(lengths[i] for i in unit) for unit in units]

    def epoch_windows(epoch: int) -> list[list[list[int]]]:
        """Per optimizer step, its batches; a batch is a list of unit indices."""
        batches = length_grouped_batches(
            unit_lengths, config.batch_size, seed=config.seed, epoch=epoch, group=config.group_by_length
        )
        # Every process needs the same number of steps: drop the < world leftover batches.
        usable = (len(batches) // world) * world or len(batches)
        mine = batches[rank:usable:world] if world > 1 else batches
        return [mine[i : i + config.grad_accum] for i in range(0, len(mine), config.grad_accum)]

    steps_per_epoch = len(epoch_windows(0))
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    fingerprint = data_fingerprint(features, groups)
    state = TrainerState(data_fingerprint=fingerprint)
    resumed_from = latest_checkpoint(checkpoint_dir) if resume else None
    if resumed_from is not None:
        state = load_checkpoint(resumed_from, model, optimizer, accelerator=accelerator)
        if state.data_fingerprint != fingerprint:
            raise HeedfulError(
                f"{resumed_from}: checkpoint was made on other training data; use a new output folder or --no-resume"
            )
        log.info("resuming from %s (step %d)", resumed_from, state.step)
    last_checkpoint = resumed_from

    started = time.perf_counter()
    saved_at = state.step if resumed_from is not None else -1
    with progress_bar("training", total=total_steps, enabled=show_progress and accelerator.is_main_process) as advance:
        advance(state.step)
        while state.step < total_steps and state.epoch < config.epochs:
            windows = epoch_windows(state.epoch)
            for window in windows[state.step_in_epoch :]:
                if state.step >= total_steps:
                    break
                window_rows = [[i for u in batch_units for i in units[u]] for batch_units in window]
                total_items = _reduce_sum(accelerator, _window_token_count(features, window_rows, is_seq2seq), world)
                # DDP averages gradients over processes; scale so the result is a token mean.
                denominator = max(total_items, 1) / world
                if aligned:
                    n_groups = sum(1 for batch_units in window for u in batch_units if len(units[u]) > 1)
                    group_denominator = max(_reduce_sum(accelerator, n_groups, world), 1) / world
                window_loss = 0.0
                for j, (batch_units, indices) in enumerate(zip(window, window_rows)):
                    batch = {k: v.to(accelerator.device) for k, v in collate([features[i] for i in indices]).items()}
                    sync = contextlib.nullcontext() if j == len(window) - 1 else accelerator.no_sync(model)
                    with sync, accelerator.autocast():
                        if aligned:
                            loss, n = _aligned_loss(
                                model, batch, _batch_groups(units, batch_units), config.kl_weight,
                                is_seq2seq=is_seq2seq, full_logits=use_naive,
                                denominator=denominator, group_denominator=group_denominator,
                            )
                        elif use_naive:
                            n = int((batch["labels"] != IGNORE_INDEX).sum()) - (0 if is_seq2seq else _first_label_count(batch))
                            loss = naive_ce(model, batch) * n / denominator
                        else:
                            loss, n = output_token_ce(model, batch, is_seq2seq=is_seq2seq, num_items=denominator)
                    if not torch.isfinite(loss.detach()):
                        raise _non_finite("loss", float(loss.detach()), state, last_checkpoint)
                    accelerator.backward(loss)
                    window_loss += float(loss.detach()) / world
                    state.tokens += sum(lengths[i] for i in indices)
                if config.max_grad_norm is not None:
                    norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    if norm is not None and not math.isfinite(float(norm)):
                        raise _non_finite("gradient norm", float(norm), state, last_checkpoint)
                lr = config.learning_rate * lr_factor(state.step, total_steps, config)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                state.step_in_epoch += 1
                state.losses.append(window_loss)
                advance(1)
                if on_step is not None:
                    on_step(state)
                if config.save_every and state.step % config.save_every == 0:
                    last_checkpoint = save_checkpoint(
                        checkpoint_dir, model, optimizer, state, accelerator=accelerator, keep=config.keep_checkpoints
                    )
                    saved_at = state.step
            else:
                state.epoch += 1
                state.step_in_epoch = 0
                continue
            break  # max_steps reached inside the epoch
    if saved_at != state.step or last_checkpoint is None:
        last_checkpoint = save_checkpoint(
            checkpoint_dir, model, optimizer, state, accelerator=accelerator, keep=config.keep_checkpoints
        )
    return LoopResult(state, last_checkpoint, time.perf_counter() - started, resumed_from)


def _batch_groups(units: Sequence[Sequence[int]], batch_units: Sequence[int]) -> list[list[int]]:
    """The groups of one batch as batch-row indices (rows follow the units' order)."""
    groups, row = [], 0
    for u in batch_units:
        groups.append(list(range(row, row + len(units[u]))))
        row += len(units[u])
    return groups


def _aligned_loss(
    model: Any,
    batch: dict[str, torch.Tensor],
    groups: Sequence[Sequence[int]],
    kl_weight: float,
    *,
    is_seq2seq: bool,
    full_logits: bool,
    denominator: float,
    group_denominator: float,
) -> tuple[torch.Tensor, int]:
    """``(1 - λ)·CE + λ·KL`` for one micro-batch, each term scaled to its step-wide mean."""
    logits, labels = (full_output_logits if full_logits else output_logits)(model, batch, is_seq2seq=is_seq2seq)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="sum") / denominator
    kl = group_kl(logits, labelled_counts(batch["labels"], is_seq2seq=is_seq2seq), groups) / group_denominator
    return alignment_loss(ce, kl, kl_weight), int(labels.numel())


def _checkpoint_activations(model: Any, every: int | None) -> None:
    """Apply ``LoopConfig.activation_checkpoint_every`` (None: 2 for full fine-tuning, else 0)."""
    if is_gradient_checkpointing(model):
        return
    if every is None:
        if is_peft(model) or not _has_checkpointable_layers(model):
            return
        every = 2
    if every > 0:
        enable_gradient_checkpointing(model, every_n_layers=every)


def _has_checkpointable_layers(model: Any) -> bool:
    """Whether ``model`` can checkpoint single decoder layers (transformers' per-layer flag)."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:
        return False
    if not getattr(model, "supports_gradient_checkpointing", False):
        return False
    return any(isinstance(m, GradientCheckpointingLayer) for m in model.modules())


def _first_label_count(batch: dict[str, torch.Tensor]) -> int:
    """Labelled tokens at position 0 of a causal batch (they have nothing to predict them)."""
    return int((batch["labels"][:, 0] != IGNORE_INDEX).sum())


def _non_finite(what: str, value: float, state: TrainerState, checkpoint: Path | None) -> HeedfulError:
    where = f"last good checkpoint: {checkpoint}" if checkpoint is not None else "no checkpoint was written yet"
    return HeedfulError(
        f"step {state.step + 1}: {what} is {value} (not finite); training stopped before the update, {where}"
    )
