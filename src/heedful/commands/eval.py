"""``heedful eval``: evaluate a model on every (task x instruction) pair."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from heedful.evaluate.config import EvalConfig
from heedful.progress import stdout_console
from heedful.rundir import RunDir

if TYPE_CHECKING:
    from heedful.evaluate.runner import EvalResult

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.3 s, not 2 s.

CONFIG = EvalConfig


def print_scores(result: EvalResult) -> None:
    """A rich table: one row per (task, instruction), scores in percent."""
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


def run(config: EvalConfig) -> None:
    """Evaluate a model on every (task x instruction) pair; resumable, results in --out."""
    from heedful.studies.runners import run_eval

    print_scores(run_eval(config))
    typer.echo(f"results: {RunDir(config.out).results}", err=True)
