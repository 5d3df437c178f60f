"""``heedful train``: fine-tune a model on tasks (STL/MTL, sample budgets, PEFT), then evaluate it."""

from __future__ import annotations

from typing import Any

import typer

from heedful.progress import stdout_console
from heedful.train.config import TrainConfig

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.3 s, not 2 s.

CONFIG = TrainConfig


def run(config: TrainConfig) -> None:
    """Fine-tune a model on --data.tasks and evaluate it; resumable, everything recorded in --out."""
    from heedful.studies.runners import run_train

    config.validate()
    _print_results(run_train(config))
    typer.echo(f"run: {config.out}", err=True)


def _print_results(results: list[Any]) -> None:
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
    stdout_console().print(table)
