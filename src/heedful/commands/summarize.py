"""``heedful summarize``: one table of exact match / ROUGE-L over finished runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.analysis.runs import comparison_table, load_run, score_rows
from heedful.io import write_json_atomic
from heedful.progress import stdout_console
from heedful.provenance import environment


def summarize_command(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of heedful train / eval (train_config.json or results.json).")],
    by: Annotated[str, typer.Option(help="Columns: task or category.")] = "task",
    metric: Annotated[str, typer.Option(help="Metric shown (in percent): exact_match or rougeL (both are saved).")] = "exact_match",
    out: Annotated[Optional[Path], typer.Option(help="Also write every row (all metrics as fractions 0..1, run configs) to this JSON file.")] = None,
) -> None:
    """Compare runs (e.g. Gupta 2023's budgets x STL/MTL x with/without instructions) by task or category."""
    loaded = [load_run(path.resolve()) for path in runs]
    # runs are named relative to their common parent: short labels for a folder of runs
    rows = score_rows(loaded, root=Path(os.path.commonpath([r.path.parent for r in loaded])))
    table = comparison_table(rows, by=by, metric=metric)
    stdout_console().print(table)
    if out is not None:
        write_json_atomic(out, {
            "rows": rows,
            "runs": {str(r.path): {"kind": r.kind, "config": r.config} for r in loaded},
            "environment": environment(),
        })
        typer.echo(f"wrote {out}", err=True)
