"""``heedful robustness``: accuracy across instruction phrasings, summarised by kind.

With no arguments it runs the built-in default: SmolLM2-135M-Instruct on the BIG-bench
Lite multiple-choice tasks, each task's designer instruction plus heedful's built-in
phrasings, on a seeded sample of each task (Sun et al. 2023, sections 3-4).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from heedful.analysis.config import RobustnessConfig
from heedful.analysis.paired import render_paired_table
from heedful.analysis.robustness import render_robustness_table, robustness_report
from heedful.analysis.runs import load_run
from heedful.commands.configured import save_config
from heedful.io import write_json_atomic
from heedful.progress import stdout_console
from heedful.provenance import environment
from heedful.rundir import RunDir

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.

CONFIG = RobustnessConfig


def run(config: RobustnessConfig) -> None:
    """Accuracy across instruction phrasings by kind (observed, unobserved, designer...), with 95% CIs."""
    if config.from_run is not None:
        finished = load_run(Path(config.from_run))
        records, config_info, target = finished.records, finished.config, Path(config.from_run)
    else:
        from heedful.evaluate.runner import evaluate

        records, config_info, target = evaluate(config).records, dataclasses.asdict(config), Path(config.out)
        save_config(config, config.out)
    report = robustness_report(records, n_bootstrap=config.n_bootstrap, seed=config.seed)
    write_json_atomic(
        RunDir(target).robustness,
        {"config": config_info, "n_bootstrap": config.n_bootstrap, "seed": config.seed, "environment": environment(),
         **report},
    )
    stdout_console().print(render_robustness_table(report["rows"]))
    if "observed_vs_unobserved" in report:
        stdout_console().print(render_paired_table(report["observed_vs_unobserved"]))
    typer.echo(f"robustness: {RunDir(target).robustness}", err=True)
