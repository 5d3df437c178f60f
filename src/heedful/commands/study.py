"""``heedful study``: run a paper's experiment as one recipe (a study file), here or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from heedful.errors import UserError
from heedful.io import write_text_atomic
from heedful.progress import stdout_console
from heedful.rundir import RunDir
from heedful.studies.spec import Study, load_study

# The executors load torch (and Ray) only when units run: `heedful --help` stays fast.

app = typer.Typer(name="study", help="Run a study (a paper's experiment as one YAML recipe) and see where it stands.",
                  no_args_is_help=True, add_completion=False)

StudyFile = Annotated[Path, typer.Argument(help="Study file (YAML), e.g. studies/kung-peng.yaml.", show_default=False)]
Variant = Annotated[
    Optional[str], typer.Option(help="A variant of the study (e.g. paper: the papers' models and data).")
]
Out = Annotated[Optional[Path], typer.Option(help="Study folder (default: the file's out, else runs/studies/NAME).")]
Set = Annotated[
    Optional[list[str]], typer.Option("--set", help="NAME=VALUE: override one of the study's vars (repeatable).")
]


def _load(study_file: Path, variant: str | None, out: Path | None, assignments: list[str] | None) -> Study:
    overrides = {}
    for assignment in assignments or []:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise UserError(f"--set {assignment}: expected NAME=VALUE")
        overrides[name] = yaml.safe_load(value) if value else ""
    return load_study(study_file, variant=variant, out=out, overrides=overrides)


@app.command("run")
def run_command(
    study_file: StudyFile,
    executor: Annotated[
        str, typer.Option(help="local: units in dependency order here; ray: units as Ray tasks.")
    ] = "local",
    address: Annotated[
        Optional[str], typer.Option(help="Ray cluster to join: auto, or ray://HOST:PORT (default: start a local one).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="List the units, their needs and which are done; run nothing.")] = False,
    variant: Variant = None,
    out: Out = None,
    set_: Set = None,
) -> None:
    """Run every unit of STUDY_FILE that is not done yet; re-running resumes, and a finished unit never runs again."""
    study = _load(study_file, variant, out, set_)
    from heedful.studies.executors import run_study, study_states

    if dry_run:
        stdout_console().print(_table(study, study_states(study), dry_run=True))
        return
    if executor == "local" and address:
        raise UserError("--address is for --executor ray")
    states = run_study(study, executor=executor, address=address)
    stdout_console().print(_table(study, states))
    failed = [unit_id for unit_id, state in states.items() if state.status != "done"]
    typer.echo(f"study: {RunDir(study.out).store} ({len(states) - len(failed)}/{len(states)} units done)", err=True)
    if failed:
        raise typer.Exit(1)


@app.command("status")
def status_command(study_file: StudyFile, variant: Variant = None, out: Out = None, set_: Set = None) -> None:
    """Each unit's state (done, failed, blocked, pending) and each failed unit's one-line error."""
    study = _load(study_file, variant, out, set_)
    from heedful.studies.executors import study_states

    stdout_console().print(_table(study, study_states(study)))


def _table(study: Study, states: dict, *, dry_run: bool = False) -> Table:
    table = Table(title=f"study {study.name}" + (f" ({study.variant})" if study.variant else "") + f" — {study.out}")
    for column in ("unit", "command", "needs" if dry_run else "wall s", "state", "folder" if dry_run else "error"):
        table.add_column(column, overflow="fold")
    for unit in study.units:
        state = states[unit.id]
        wall = f"{state.wall_s:.0f}" if state.wall_s is not None else ""
        cells = (unit.id, unit.command, ", ".join(unit.needs) if dry_run else wall, state.status,
                 str(unit.folder) if dry_run else (state.error or ""))
        table.add_row(*map(escape, cells))  # unit ids hold [axis=value], which rich would read as markup
    return table


@app.command("summary")
def summary_command(
    study_file: StudyFile,
    variant: Variant = None,
    out: Out = None,
    set_: Set = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Also write the table as Markdown to this file.")] = None,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CIs.")] = 1000,
) -> None:
    """Every finished unit's score per instruction kind, with 95% CIs, from the stored records."""
    study = _load(study_file, variant, out, set_)
    from heedful.studies.summary import interval, study_summary, summary_markdown

    rows = study_summary(study, n_bootstrap=n_bootstrap)
    table = Table(title=f"study {study.name}: score per instruction kind (overall)")
    for column in ("unit", "tasks", "kind", "metric", "n tasks", "examples", "mean %", "95% CI", "PDR"):
        table.add_column(column, overflow="fold")
    for row in rows:
        pdr = "-" if row["pdr"] is None else f"{row['pdr']:+.2f}"
        cells = (row["unit"], row["task"], row["kind"], row["metric"], str(row["n_tasks"]),
                 str(row["n_examples"] or "-"), f"{100 * row['mean']:.1f}", interval(row), pdr)
        table.add_row(*map(escape, cells))
    stdout_console().print(table)
    if markdown is not None:
        write_text_atomic(markdown, summary_markdown(study, rows))
        typer.echo(f"summary: {markdown}", err=True)
