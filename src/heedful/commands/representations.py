"""``heedful representations``: how far unobserved instructions sit from observed ones inside the model."""

from __future__ import annotations

from typing import Any

import typer

from heedful.analysis.config import RepresentationsConfig
from heedful.progress import stdout_console
from heedful.rundir import RunDir

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.3 s, not 2 s.

CONFIG = RepresentationsConfig


def run(config: RepresentationsConfig) -> None:
    """Distance of each instruction's first-decoded-token representation to the nearest reference one (Sun et al. 2023, 4.5).

    Writes OUT/representations.json (per instruction, per task and kind, overall; config,
    versions, seed) and OUT/vectors.npz (the vectors with task, instruction, kind and
    instance labels, e.g. for a t-SNE plot).
    """
    from heedful.studies.runners import run_representations

    summary = run_representations(config)
    stdout_console().print(_distance_table(summary, config))
    typer.echo(f"representations: {RunDir(config.out).representations}", err=True)


def _distance_table(summary: dict[str, Any], config: RepresentationsConfig) -> Any:
    from rich.table import Table

    table = Table(title=f"l2 distance to the nearest {'/'.join(config.reference_kinds)} instruction (layer {config.layer})")
    for column in ("task", "kind", "instructions", "distance"):
        table.add_column(column, justify="right" if column in ("instructions", "distance") else "left")
    for task, kinds in summary["tasks"].items():
        for kind, entry in kinds.items():
            table.add_row(task, kind, str(entry["n_instructions"]), f"{entry['distance']:.2f}")
    for kind, entry in summary["overall"].items():
        table.add_row("overall: mean of tasks", kind, "", f"{entry['distance']:.2f}")
        table.add_row("overall: median of tasks", kind, "", f"{entry['median_distance']:.2f}")
    return table
