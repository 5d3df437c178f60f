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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from heedful.allocator import training_warning
from heedful.errors import HeedfulError
from heedful.progress import progress_bar
from heedful.store import content_hash
from heedful.train.checkpoint import TrainerState, is_fsdp, latest_checkpoint, load_checkpoint, save_checkpoint
from heedful.train.config import LoopConfig
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


def make_accelerator(mixed_precision: str = "no", cpu: bool | None = None, log_with: Sequence[Any] | None = None) -> Any:
    """An ``Accelerator`` for this loop (accumulation is done by the loop itself).

    ``log_with``: accelerate trackers (see :mod:`heedful.train.tracking`), started by
    ``accelerator.init_trackers``; the loop logs to them through ``accelerator.log``.
    """
    from accelerate import Accelerator

    kwargs: dict[str, Any] = {"mixed_precision": mixed_precision}
    if cpu is not None:
        kwargs["cpu"] = cpu
    if log_with:
        kwargs["log_with"] = list(log_with)
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


@dataclass
class _Meter:
    """What the loop logs every ``log_every`` steps: loss, learning rate and tokens/s since the last log."""

    prefix: str  # the unit's name and "/" for one model of several (STL), else ""
    tokens: int = 0  # this process's count at the last log
    seconds: float = 0.0  # time in optimizer steps since the last log (not checkpoints or evaluations)

    def log(self, run: _Run, state: TrainerState, steps: int) -> None:
        """Log the last ``steps`` steps. Every process calls it (it sums over them); the main one writes."""
        loss, tokens = sum(state.losses[-steps:]), float(state.tokens - self.tokens)
        if run.world > 1:  # each process's loss is its share of the step's mean
            totals = torch.tensor([loss, tokens], device=run.accelerator.device, dtype=torch.float64)
            loss, tokens = (float(v) for v in run.accelerator.reduce(totals, "sum"))
        run.accelerator.log({
            f"{self.prefix}train/loss": loss / steps,
            f"{self.prefix}train/learning_rate": run.optimizer.param_groups[0]["lr"],
            f"{self.prefix}train/tokens_per_s": tokens / self.seconds if self.seconds > 0 else 0.0,
        }, step=state.step)
        self.tokens, self.seconds = state.tokens, 0.0


@dataclass
class _Run:
    """What stays fixed while one run trains: the prepared model and optimizer, the data as units."""

    model: Any
    optimizer: Any
    accelerator: Any
    config: LoopConfig
    features: Sequence[Features]
    units: list[list[int]]  # indices into features; a unit stays in one batch (an instance's prompts)
    lengths: list[int]
    collate: Collator
    is_seq2seq: bool
    checkpoint_dir: Path
    aligned: bool  # KL alignment over units of several prompts
    use_naive: bool  # full-logit loss (config.loss == "naive", or FSDP)
    seed: int = 0  # the data order's
    total_steps: int = 0

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    def epoch_windows(self, epoch: int) -> list[list[list[int]]]:
        """Per optimizer step of ``epoch``, its batches (lists of unit indices) on this process."""
        unit_lengths = [sum(self.lengths[i] for i in unit) for unit in self.units]
        c = self.config
        batches = length_grouped_batches(unit_lengths, c.batch_size, seed=self.seed, epoch=epoch, group=c.group_by_length)
        # Every process needs the same number of steps: drop the < world leftover batches.
        usable = (len(batches) // self.world) * self.world or len(batches)
        rank = self.accelerator.process_index
        mine = batches[rank:usable:self.world] if self.world > 1 else batches
        return [mine[i : i + c.grad_accum] for i in range(0, len(mine), c.grad_accum)]

    def save(self, state: TrainerState) -> Path:
        return save_checkpoint(
            self.checkpoint_dir, self.model, self.optimizer, state, accelerator=self.accelerator,
            keep=self.config.keep_checkpoints,
        )


def _setup(
    model: Any, tokenizer: Any, features: Sequence[Features], config: LoopConfig, checkpoint_dir: Path, *,
    is_seq2seq: bool, accelerator: Any, groups: Sequence[Sequence[int]] | None, seed: int,
) -> _Run:
    """Validate, prepare model and optimizer with ``accelerator``, and count the steps."""
    config.validate()
    if not features:
        raise HeedfulError("no training examples: check the task spec, split and budget")
    units = [list(g) for g in groups] if groups is not None else [[i] for i in range(len(features))]
    aligned = config.kl_weight > 0
    if aligned and not any(len(u) > 1 for u in units):
        raise HeedfulError("kl_weight > 0 needs training prompts under at least two instructions per instance")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise HeedfulError("the model has no trainable parameters")
    _checkpoint_activations(model, config.activation_checkpoint_every)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    run = _Run(
        model=model, optimizer=optimizer, accelerator=accelerator, config=config, features=features, units=units,
        lengths=[example_length(f, is_seq2seq) for f in features],
        collate=Collator(pad_token_id=pad, is_seq2seq=is_seq2seq), is_seq2seq=is_seq2seq,
        checkpoint_dir=checkpoint_dir, aligned=aligned, use_naive=config.loss == "naive" or is_fsdp(accelerator),
        seed=seed,
    )
    run.total_steps = len(run.epoch_windows(0)) * config.epochs
    if config.max_steps is not None:
        run.total_steps = min(run.total_steps, config.max_steps)
    return run


def _resume(run: _Run, fingerprint: str, resume: bool) -> tuple[TrainerState, Path | None]:
    """The state to start from: the newest checkpoint's (same data only), or a fresh one."""
    resumed_from = latest_checkpoint(run.checkpoint_dir) if resume else None
    if resumed_from is None:
        return TrainerState(data_fingerprint=fingerprint), None
    state = load_checkpoint(resumed_from, run.model, run.optimizer, accelerator=run.accelerator)
    if state.data_fingerprint != fingerprint:
        raise HeedfulError(
            f"{resumed_from}: checkpoint was made on other training data; use a new output folder or --resume false"
        )
    log.info("resuming from %s (step %d)", resumed_from, state.step)
    return state, resumed_from


def _step(run: _Run, window: list[list[int]], state: TrainerState, last_checkpoint: Path | None) -> float:
    """One optimizer step over ``window`` (its batches, accumulated); returns the step's loss."""
    accelerator, config, units = run.accelerator, run.config, run.units
    window_rows = [[i for u in batch_units for i in units[u]] for batch_units in window]
    total_items = _reduce_sum(accelerator, _window_token_count(run.features, window_rows, run.is_seq2seq), run.world)
    # DDP averages gradients over processes; scale so the result is a token mean.
    denominator = max(total_items, 1) / run.world
    group_denominator = 1.0
    if run.aligned:
        n_groups = sum(1 for batch_units in window for u in batch_units if len(units[u]) > 1)
        group_denominator = max(_reduce_sum(accelerator, n_groups, run.world), 1) / run.world
    window_loss = 0.0
    for j, (batch_units, indices) in enumerate(zip(window, window_rows)):
        batch = {k: v.to(accelerator.device) for k, v in run.collate([run.features[i] for i in indices]).items()}
        sync = contextlib.nullcontext() if j == len(window) - 1 else accelerator.no_sync(run.model)
        with sync, accelerator.autocast():
            loss = _batch_loss(run, batch, batch_units, denominator, group_denominator)
        if not torch.isfinite(loss.detach()):
            raise _non_finite("loss", float(loss.detach()), state, last_checkpoint)
        accelerator.backward(loss)
        window_loss += float(loss.detach()) / run.world
        state.tokens += sum(run.lengths[i] for i in indices)
    if config.max_grad_norm is not None:
        norm = accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
        if norm is not None and not math.isfinite(float(norm)):
            raise _non_finite("gradient norm", float(norm), state, last_checkpoint)
    lr = config.learning_rate * lr_factor(state.step, run.total_steps, config)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return window_loss


def _batch_loss(
    run: _Run, batch: dict[str, torch.Tensor], batch_units: Sequence[int], denominator: float, group_denominator: float
) -> torch.Tensor:
    """The batch's share of the step's loss (already divided by the step's token count)."""
    if run.aligned:
        loss, _ = _aligned_loss(
            run.model, batch, _batch_groups(run.units, batch_units), run.config.kl_weight,
            is_seq2seq=run.is_seq2seq, full_logits=run.use_naive,
            denominator=denominator, group_denominator=group_denominator,
        )
        return loss
    if run.use_naive:
        n = int((batch["labels"] != IGNORE_INDEX).sum()) - (0 if run.is_seq2seq else _first_label_count(batch))
        return naive_ce(run.model, batch) * n / denominator
    loss, _ = output_token_ce(run.model, batch, is_seq2seq=run.is_seq2seq, num_items=denominator)
    return loss


def _run_epochs(
    run: _Run,
    state: TrainerState,
    last_checkpoint: Path | None,
    saved_at: int,
    *,
    advance: Callable[[int], None],
    on_step: StepCallback | None,
    meter: _Meter | None = None,
) -> tuple[Path | None, int]:
    """Step from ``state`` to ``run.total_steps`` or the last epoch's end; returns the newest checkpoint and its step.

    Saves every ``config.save_every`` steps; ``advance`` moves the progress bar; ``meter``
    logs to the trackers every ``config.log_every`` steps and at the last.
    """
    config = run.config
    while state.step < run.total_steps and state.epoch < config.epochs:
        for window in run.epoch_windows(state.epoch)[state.step_in_epoch :]:
            if state.step >= run.total_steps:
                break
            began = time.perf_counter()
            loss = _step(run, window, state, last_checkpoint)
            state.step += 1
            state.step_in_epoch += 1
            state.losses.append(loss)
            advance(1)
            if meter is not None:
                meter.seconds += time.perf_counter() - began
                if state.step % config.log_every == 0 or state.step == run.total_steps:
                    meter.log(run, state, (state.step - 1) % config.log_every + 1)
            if on_step is not None:
                on_step(state)
            if config.save_every and state.step % config.save_every == 0:
                last_checkpoint, saved_at = run.save(state), state.step
        else:
            state.epoch += 1
            state.step_in_epoch = 0
            continue
        break  # max_steps reached inside the epoch
    return last_checkpoint, saved_at


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
    seed: int = 0,
    log_prefix: str = "",
) -> LoopResult:
    """Train ``model`` on ``features``; checkpoints go to ``checkpoint_dir``.

    ``groups`` (indices into ``features``, reference first) keep the prompts of one
    instance under several instructions in the same batch: batches then hold
    ``batch_size`` groups, and ``config.kl_weight`` > 0 adds the KL alignment term.
    ``seed`` fixes the data order. With ``config.log_with`` the loss, learning rate and
    tokens/s go to ``accelerator``'s started trackers, named ``{log_prefix}train/...``.

    With ``resume`` a run continues from the newest checkpoint in ``checkpoint_dir``
    (weights, optimizer, RNG and data position), so a killed run ends with the same
    weights as an uninterrupted one. A non-finite loss or gradient norm stops the run
    with :class:`HeedfulError` before the update, leaving the last good checkpoint.
    The parts, in the manner of a torchtune recipe: :func:`_setup`, :func:`_resume`,
    :func:`_run_epochs` (:func:`_step` per optimizer step), ``_Run.save`` per checkpoint.
    """
    accelerator = accelerator or make_accelerator(config.mixed_precision)
    if (warning := training_warning(str(accelerator.device))) and accelerator.is_main_process:
        log.warning(warning)
    run = _setup(
        model, tokenizer, features, config, Path(checkpoint_dir),
        is_seq2seq=is_seq2seq, accelerator=accelerator, groups=groups, seed=seed,
    )
    state, resumed_from = _resume(run, data_fingerprint(features, groups), resume)
    last_checkpoint = resumed_from
    started = time.perf_counter()
    saved_at = state.step if resumed_from is not None else -1
    show_bar = show_progress and accelerator.is_main_process
    with progress_bar("training", total=run.total_steps, enabled=show_bar) as advance:
        advance(state.step)
        meter = _Meter(log_prefix, tokens=state.tokens) if config.log_with else None
        last_checkpoint, saved_at = _run_epochs(
            run, state, last_checkpoint, saved_at, advance=advance, on_step=on_step, meter=meter
        )
    if saved_at != state.step or last_checkpoint is None:
        last_checkpoint = run.save(state)
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
