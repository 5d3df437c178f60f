"""``heedful export``: every stored record and per-task summary as Parquet or CSV tables, ready for pandas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heedful.errors import UserError


def export_command(
    out: Annotated[Path, typer.Option(help="Folder for records.FORMAT and summaries.FORMAT.", show_default=False)],
    # optional for typer so that none given is heedful's one-line error, not a usage screen
    inputs: Annotated[list[Path] | None, typer.Argument(
        help="Run folders, study folders (heedful study run --out) or report folders.", show_default=False)] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples of each summary's 95% CI.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Write two tidy tables: records (one row per scored example, the record as JSON too) and summaries
    (one row per unit, task and instruction: score, 95% CI, n).

    Nothing runs a model. pandas reads them with read_parquet or read_csv.
    """
    # pyarrow loads here, not at `heedful --help`
    from heedful.report.export import export_tables
    from heedful.report.sources import TABLE_FORMATS, load_inputs

    if fmt not in TABLE_FORMATS:
        raise UserError(f"--format: expected one of {', '.join(TABLE_FORMATS)}, got {fmt!r}")
    if n_bootstrap < 1:
        raise UserError(f"--n-bootstrap must be at least 1, got {n_bootstrap}")
    units = load_inputs([Path(p) for p in inputs or []])
    for written in export_tables(units, out, fmt=fmt, n_bootstrap=n_bootstrap, seed=seed):
        typer.echo(f"{written.path}\t{written.rows} rows")
