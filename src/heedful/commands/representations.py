"""``heedful representations``: how far unobserved instructions sit from observed ones inside the model."""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from heedful.analysis.config import RepresentationsConfig
from heedful.commands.configured import save_config
from heedful.io import write_json_atomic, write_npz_atomic
from heedful.progress import stdout_console
from heedful.provenance import environment
from heedful.rundir import RunDir

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.

CONFIG = RepresentationsConfig


def run(config: RepresentationsConfig) -> None:
    """Distance of each instruction's first-decoded-token representation to the nearest reference one (Sun et al. 2023, 4.5).

    Writes OUT/representations.json (per instruction, per task and kind, overall; config,
    versions, seed) and OUT/vectors.npz (the vectors with task, instruction, kind and
    instance labels, e.g. for a t-SNE plot).
    """
    from heedful.analysis.representations import distance_summary, nearest_reference_distances
    from heedful.evaluate.representations import first_token_representations
    from heedful.models.loading import load_configured

    backend = load_configured(config.model)
    vectors, labels, skipped = first_token_representations(config.prompt_plan(), backend, layer=config.layer)
    rows = nearest_reference_distances(vectors, labels, reference_kinds=tuple(config.reference_kinds))
    summary = distance_summary(rows)
    files = RunDir(config.out)
    write_npz_atomic(
        files.vectors,
        vectors=vectors,
        **{f: [getattr(label, f) for label in labels] for f in ("task", "instruction_id", "kind", "instance_id")},
    )
    write_json_atomic(files.representations, {
        "config": dataclasses.asdict(config),
        "environment": environment(),
        "seeds": {"seed": config.seed},
        "skipped_unfit": skipped,
        "instructions": rows,
        **summary,
    })
    save_config(config, config.out)
    stdout_console().print(_distance_table(summary, config))
    typer.echo(f"representations: {files.representations}", err=True)


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
