"""``heedful eval``: evaluate a model on every (task x instruction) pair."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from heedful.commands import options as opt
from heedful.evaluate.config import EvalConfig
from heedful.progress import stdout_console
from heedful.rundir import RunDir

if TYPE_CHECKING:
    from heedful.evaluate.runner import EvalResult

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.


def config_from_options(**options: object) -> EvalConfig:
    """Build an EvalConfig from CLI options (comma lists become lists)."""
    for name in ("kinds", "collections", "perturb"):
        options[name] = opt.split_csv(options.get(name))  # type: ignore[arg-type]
    stop = options.get("stop")
    options["stop"] = [s.encode().decode("unicode_escape") for s in stop] if stop else ["\n"]  # type: ignore[union-attr]
    return EvalConfig(**options)  # type: ignore[arg-type]


def print_scores(result: EvalResult) -> None:
    """A rich table: one row per (task, instruction)."""
    from rich.table import Table

    table = Table(title=f"heedful eval — {result.run_id}")
    for column in ("task", "instruction", "kind", "metric", "score", "n"):
        table.add_column(column, justify="right" if column in ("score", "n") else "left")
    for task, instructions in result.summary["tasks"].items():
        for instruction_id, entry in instructions.items():
            table.add_row(
                task, instruction_id, entry["kind"], entry["metric"], f"{100 * entry['score']:.1f}", str(entry["n"])
            )
    stdout_console().print(table)


def eval_command(
    model: opt.Model = "smollm2-135m-instruct",
    tasks: opt.Tasks = "bigbench:bbl-mc",
    instructions: opt.Instructions = "designer",
    kinds: opt.Kinds = None,
    collections: opt.Collections = None,
    perturb: opt.Perturb = None,
    label_spaces: opt.LabelSpaces = None,
    baselines: opt.Baselines = False,
    shots: opt.Shots = 0,
    limit: opt.Limit = None,
    split: opt.Split = "test",
    seed: opt.Seed = 0,
    shuffle_options: opt.ShuffleOptions = True,
    scoring: opt.Scoring = "sum",
    dtype: opt.Dtype = "float32",
    device: opt.Device = "cpu",
    adapter: opt.Adapter = None,
    chat: opt.Chat = False,
    max_new_tokens: opt.MaxNewTokens = 64,
    stop: opt.Stop = None,
    truncation: opt.Truncation = "left",
    on_unfit: opt.OnUnfit = "skip",
    batch_size: opt.BatchSize = 8,
    out: opt.Out = Path("runs/eval"),
) -> None:
    """Evaluate a model on every (task x instruction) pair; resumable, results in OUT."""
    config = config_from_options(
        model=model, tasks=tasks, instructions=instructions, kinds=kinds, collections=collections, shots=shots,
        perturb=perturb, label_spaces=str(label_spaces) if label_spaces else None, baselines=baselines,
        limit=limit, split=split, seed=seed, shuffle_options=shuffle_options, scoring=scoring, dtype=dtype,
        device=device, adapter=adapter, chat=chat, max_new_tokens=max_new_tokens, stop=stop,
        truncation=truncation, on_unfit=on_unfit, batch_size=batch_size,
    )
    from heedful.evaluate.runner import evaluate

    result = evaluate(config, out)
    print_scores(result)
    typer.echo(f"results: {RunDir(out).results}", err=True)
