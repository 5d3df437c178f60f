"""``heedful report``: the papers' tables and figures from stored records, as one page that opens from disk."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.errors import UserError


def report_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="Study folders (heedful study run --out), run folders, or an earlier report's folder.", show_default=False)],
    out: Annotated[Path, typer.Option(help="Report folder: index.html, figures/*.png, data/*.csv, data/records.parquet.")],
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples of every 95% CI.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of t-SNE.")] = 0,
    baseline_model: Annotated[Optional[str], typer.Option(
        help="Sample efficiency: the plain model whose largest budget is the baseline "
             "(default: the model that was instruction pre-finetuned, else the last one).")] = None,
    title: Annotated[Optional[str], typer.Option(help="The page's title (default: the studies' names).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Draw every figure the inputs' records support (Sun et al., Gupta, Kung & Peng), with each figure's data as CSV.

    Nothing runs a model: everything is recomputed from the stored records. A report folder
    given as input is redrawn from its own exported data (data/units.json, data/records.parquet).
    """
    # the report stack (matplotlib, pyarrow) loads here, not at `heedful --help`
    from heedful.report.build import build_report
    from heedful.report.sections import Settings
    from heedful.report.sources import load_inputs

    if n_bootstrap < 1:
        raise UserError(f"--n-bootstrap must be at least 1, got {n_bootstrap}")
    units = load_inputs([Path(p) for p in inputs])
    command = "heedful " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "heedful report"
    result = build_report(units, out, settings=Settings(n_bootstrap=n_bootstrap, seed=seed,
                                                        baseline_model=baseline_model),
                          command=command, title=title, show_progress=progress)
    typer.echo(f"wrote {result.out / 'index.html'}: {len(result.figures)} figures, {len(result.tables)} tables, "
               f"{len(units)} units", err=True)
