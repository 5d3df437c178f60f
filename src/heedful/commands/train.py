"""``heedful train``: fine-tune a model on tasks (STL/MTL, sample budgets, PEFT), then evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.commands import options as opt
from heedful.train.config import LoopConfig, TrainConfig

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.

Opt = typer.Option


def train_command(
    model: opt.Model = "smollm2-135m-instruct",
    tasks: opt.Tasks = "",
    encoding: Annotated[str, Opt(help="Prompt encoding: def+pos2 (SuperNI default), none (no instructions), def, gupta, gupta-noinst...")] = "def+pos2",
    setting: Annotated[str, Opt(help="stl: one model per task (own subfolder); mtl: one model on the mixture.")] = "mtl",
    budget: Annotated[str, Opt(help="Training instances per task: 100, 200, 1000, all, or a fraction like 0.25.")] = "all",
    seed: opt.Seed = 0,
    method: Annotated[str, Opt(help="full, lora, prefix or prompt.")] = "full",
    init_from: Annotated[Optional[str], Opt(help="A previous heedful train run folder to start from (pre-finetuning).")] = None,
    perturb: Annotated[str, Opt(help="Alter training prompts (Kung & Peng 2023): none, simplified, delusive.")] = "none",
    label_space_file: Annotated[Optional[str], Opt(help="Label-space JSON (Yin et al. 2023) for --perturb.")] = None,
    instructions: Annotated[
        Optional[str],
        Opt(help="Train on every instance under every instruction of this spec (as heedful eval --instructions; "
                 "the first a task has is the reference) instead of --encoding."),
    ] = None,
    instruction_kinds: Annotated[Optional[str], Opt(help="With --instructions: keep only these kinds (comma list).")] = None,
    kl_weight: Annotated[
        float, Opt(help="Sun et al. 2023's λ: loss (1-λ)·CE + λ·KL(paraphrase ‖ reference) over --instructions.")
    ] = 0.0,
    train_split: Annotated[str, Opt(help="Split the training instances come from: train, val or test.")] = "train",
    learning_rate: Annotated[float, Opt(help="Peak learning rate (AdamW).")] = 5e-5,
    epochs: Annotated[int, Opt(help="Passes over the training data.")] = 2,
    max_steps: Annotated[Optional[int], Opt(help="Stop after this many optimizer steps.")] = None,
    batch_size: Annotated[int, Opt(help="Examples per batch per process.")] = 8,
    grad_accum: Annotated[int, Opt(help="Batches accumulated per optimizer step.")] = 1,
    schedule: Annotated[str, Opt(help="constant or linear (decay to 0).")] = "constant",
    warmup_steps: Annotated[int, Opt(help="Linear warm-up steps.")] = 0,
    weight_decay: Annotated[float, Opt(help="AdamW weight decay.")] = 0.0,
    max_grad_norm: Annotated[Optional[float], Opt(help="Gradient clipping norm.")] = 1.0,
    group_by_length: Annotated[bool, Opt(help="Batch examples of similar length (seeded).")] = True,
    max_source_length: Annotated[int, Opt(help="Prompt tokens kept (demonstrations dropped first).")] = 1024,
    max_target_length: Annotated[int, Opt(help="Target tokens kept (EOS included).")] = 128,
    mixed_precision: Annotated[str, Opt(help="no, bf16 or fp16 (accelerate autocast).")] = "no",
    loss: Annotated[str, Opt(help="output: head applied at target positions only; naive: full logits.")] = "output",
    gradient_checkpointing: Annotated[bool, Opt(help="Recompute activations in backward: less memory, slower.")] = False,
    activation_checkpoint_every: Annotated[
        Optional[int],
        Opt(help="Recompute every Nth layer in backward (0 off); default: every 2nd for full fine-tuning, off for PEFT."),
    ] = None,
    dtype: opt.Dtype = "float32",
    device: opt.Device = "cpu",
    lora_r: Annotated[int, Opt(help="LoRA rank.")] = 8,
    lora_alpha: Annotated[int, Opt(help="LoRA alpha.")] = 16,
    lora_dropout: Annotated[float, Opt(help="LoRA dropout.")] = 0.05,
    lora_target_modules: Annotated[Optional[str], Opt(help="LoRA target modules (comma list; default: peft's).")] = None,
    num_virtual_tokens: Annotated[int, Opt(help="Prefix / soft-prompt length.")] = 20,
    save_every: Annotated[Optional[int], Opt(help="Checkpoint every N optimizer steps (always at the end).")] = None,
    keep_checkpoints: Annotated[int, Opt(help="Checkpoints kept per model.")] = 2,
    evaluate: Annotated[bool, Opt(help="Evaluate each trained model at the end.")] = True,
    eval_every: Annotated[Optional[int], Opt(help="Also evaluate every N optimizer steps (into eval-step-N/).")] = None,
    eval_instructions: Annotated[Optional[str], Opt(help="Instruction spec for evaluation (default: --instructions, else superni:ENCODING).")] = None,
    eval_split: Annotated[str, Opt(help="Split evaluated at the end.")] = "test",
    eval_limit: Annotated[Optional[int], Opt(help="Evaluate at most N instances per task.")] = None,
    eval_max_new_tokens: Annotated[int, Opt(help="Generation length at evaluation.")] = 128,
    eval_batch_size: Annotated[int, Opt(help="Evaluation batch size.")] = 8,
    resume: Annotated[bool, Opt(help="Continue an interrupted run in OUT from its last checkpoint.")] = True,
    out: opt.Out = Path("runs/train"),
) -> None:
    """Fine-tune MODEL on TASKS and evaluate it; resumable, everything recorded in OUT."""
    from heedful.train.recipes import run_training

    loop = LoopConfig(
        learning_rate=learning_rate, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
        grad_accum=grad_accum, schedule=schedule, warmup_steps=warmup_steps, weight_decay=weight_decay,
        max_grad_norm=max_grad_norm, group_by_length=group_by_length, save_every=save_every,
        keep_checkpoints=keep_checkpoints, mixed_precision=mixed_precision, loss=loss,
        activation_checkpoint_every=activation_checkpoint_every, kl_weight=kl_weight,
    )
    config = TrainConfig(
        model=model, tasks=tasks, encoding=encoding, setting=setting, budget=budget, seed=seed, method=method,
        init_from=init_from, perturb=perturb, label_space_file=label_space_file, instructions=instructions,
        instruction_kinds=opt.split_csv(instruction_kinds),
        train_split=train_split,
        max_source_length=max_source_length, max_target_length=max_target_length, loop=loop,
        gradient_checkpointing=gradient_checkpointing, dtype=dtype, device=device, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_target_modules=opt.split_csv(lora_target_modules),
        num_virtual_tokens=num_virtual_tokens, evaluate=evaluate, eval_every=eval_every,
        eval_instructions=eval_instructions, eval_split=eval_split, eval_limit=eval_limit,
        eval_max_new_tokens=eval_max_new_tokens, eval_batch_size=eval_batch_size,
    )
    results = run_training(config, out, resume=resume)
    _print_results(results)
    typer.echo(f"run: {out}", err=True)


def _print_results(results: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="heedful train")
    for column in ("model", "examples", "steps", "final loss", "eval score"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        score = ""
        if r.eval_summary:
            scores = [e["score"] for instrs in r.eval_summary["tasks"].values() for e in instrs.values()]
            score = f"{100 * sum(scores) / len(scores):.1f}" if scores else ""
        loss = f"{r.final_loss:.4f}" if r.final_loss is not None else ""
        table.add_row(r.name, str(r.examples), str(r.steps), loss, score)
    Console().print(table)
