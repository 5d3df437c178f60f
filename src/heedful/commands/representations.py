"""``heedful representations``: how far unobserved instructions sit from observed ones inside the model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from heedful.commands import options as opt
from heedful.commands.eval import config_from_options
from heedful.io import write_json_atomic, write_npz_atomic
from heedful.progress import stdout_console
from heedful.provenance import environment
from heedful.rundir import RunDir

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.


def representations_command(
    model: opt.Model = "smollm2-135m-instruct",
    tasks: opt.Tasks = "bigbench:bbl-mc",
    instructions: opt.Instructions = "designer,heedful",
    kinds: opt.Kinds = None,
    collections: opt.Collections = None,
    limit: opt.Limit = 3,
    split: opt.Split = "test",
    seed: opt.Seed = 0,
    shuffle_options: opt.ShuffleOptions = True,
    dtype: opt.Dtype = "float32",
    device: opt.Device = "cpu",
    adapter: opt.Adapter = None,
    chat: opt.Chat = False,
    truncation: opt.Truncation = "left",
    on_unfit: opt.OnUnfit = "skip",
    batch_size: opt.BatchSize = 8,
    layer: Annotated[int, typer.Option(help="Hidden-state layer: -2 the penultimate (Sun et al.), -1 the last, 0 the embeddings.")] = -2,
    reference_kinds: Annotated[str, typer.Option(help="Instruction kinds distances are measured to (comma list).")] = "observed,designer",
    out: opt.Out = Path("runs/representations"),
) -> None:
    """Distance of each instruction's first-decoded-token representation to the nearest reference one (Sun et al. 2023, 4.5).

    Writes OUT/representations.json (per instruction, per task and kind, overall; config,
    versions, seed) and OUT/vectors.npz (the vectors with task, instruction, kind and
    instance labels, e.g. for a t-SNE plot).
    """
    from rich.table import Table

    from heedful.analysis.representations import distance_summary, nearest_reference_distances
    from heedful.evaluate.representations import first_token_representations
    from heedful.models import load_model

    config = config_from_options(
        model=model, tasks=tasks, instructions=instructions, kinds=kinds, collections=collections, shots=0,
        limit=limit, split=split, seed=seed, shuffle_options=shuffle_options, scoring="sum", dtype=dtype,
        device=device, adapter=adapter, chat=chat, max_new_tokens=1, stop=None, truncation=truncation,
        on_unfit=on_unfit, batch_size=batch_size,
    )
    references = tuple(opt.split_csv(reference_kinds) or ())
    backend = load_model(model, dtype=dtype, device=device, adapter=adapter, truncation=truncation)
    vectors, labels, skipped = first_token_representations(config, backend, layer=layer)
    rows = nearest_reference_distances(vectors, labels, reference_kinds=references)
    summary = distance_summary(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_npz_atomic(
        RunDir(out).vectors,
        vectors=vectors,
        **{f: [getattr(label, f) for label in labels] for f in ("task", "instruction_id", "kind", "instance_id")},
    )
    write_json_atomic(RunDir(out).representations, {
        "config": {**dataclasses.asdict(config), "layer": layer, "reference_kinds": list(references)},
        "environment": environment(),
        "seeds": {"seed": seed},
        "skipped_unfit": skipped,
        "instructions": rows,
        **summary,
    })
    table = Table(title=f"l2 distance to the nearest {'/'.join(references)} instruction (layer {layer})")
    for column in ("task", "kind", "instructions", "distance"):
        table.add_column(column, justify="right" if column in ("instructions", "distance") else "left")
    for task, kinds_ in summary["tasks"].items():
        for kind, entry in kinds_.items():
            table.add_row(task, kind, str(entry["n_instructions"]), f"{entry['distance']:.2f}")
    for kind, entry in summary["overall"].items():
        table.add_row("overall: mean of tasks", kind, "", f"{entry['distance']:.2f}")
        table.add_row("overall: median of tasks", kind, "", f"{entry['median_distance']:.2f}")
    stdout_console().print(table)
    typer.echo(f"representations: {out / 'representations.json'}", err=True)
