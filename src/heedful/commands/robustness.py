"""``heedful robustness``: accuracy across instruction phrasings, summarised by kind.

With no arguments it runs the built-in default: SmolLM2-135M-Instruct on the BIG-bench
Lite multiple-choice tasks, each task's designer instruction plus heedful's built-in
phrasings, on a seeded sample of each task (Sun et al. 2023, sections 3-4).
"""

from __future__ import annotations

import typer

from heedful.analysis.config import RobustnessConfig
from heedful.analysis.paired import render_paired_table
from heedful.analysis.robustness import render_robustness_table
from heedful.progress import stdout_console
from heedful.rundir import RunDir

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.3 s, not 2 s.

CONFIG = RobustnessConfig


def run(config: RobustnessConfig) -> None:
    """Accuracy across instruction phrasings by kind (observed, unobserved, designer...), with 95% CIs."""
    from heedful.studies.runners import run_robustness

    report = run_robustness(config)
    stdout_console().print(render_robustness_table(report["rows"]))
    if "observed_vs_unobserved" in report:
        stdout_console().print(render_paired_table(report["observed_vs_unobserved"]))
    typer.echo(f"robustness: {RunDir(config.out).robustness}", err=True)
