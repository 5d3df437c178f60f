"""``heedful audit``: does this model read its instructions? The one-command main job.

With no arguments it audits SmolLM2-135M-Instruct on three BIG-bench Lite tasks on which it
is clearly above chance: its sensitivity to phrasing and to format, its reliance on the
instruction (none, nonsense, negated, simplified, delusive), and a verdict in plain words,
with the report page beside them.
"""

from __future__ import annotations

from pathlib import Path

import typer

from heedful.analysis.config import AuditConfig
from heedful.progress import stdout_console
from heedful.rundir import RunDir

# Modules that load torch are imported inside the command: `heedful --help` stays fast.

CONFIG = AuditConfig


def run(config: AuditConfig) -> None:
    """Does the model read its instructions? Phrasing and format sensitivity, reliance, a verdict, a report page."""
    from heedful.studies.runners import run_audit

    audit = run_audit(config)
    console = stdout_console()
    console.print(f"[bold]Audit of {config.model.name}[/bold] on {', '.join(audit['tasks'])} "
                  f"({audit['n_instances']} instances)")
    for line in audit["verdict"]:
        console.print(f"• {line}", highlight=False)
    typer.echo(f"audit: {RunDir(config.out).audit}", err=True)
    if config.report:
        from heedful.report.build import build_report
        from heedful.report.sections import Settings
        from heedful.report.sources import load_run_folder

        unit = load_run_folder(Path(config.out), unit_id=f"audit {config.model.name}")
        out = Path(config.out) / "report"
        build_report([unit], out, settings=Settings(n_bootstrap=config.n_bootstrap, seed=config.seed),
                     command="heedful audit " + f"--config {RunDir(config.out).config}",
                     title=f"heedful audit: {config.model.name}", show_progress=False)
        typer.echo(f"report: {out / 'index.html'}", err=True)
