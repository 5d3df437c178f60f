"""``heedful robustness``: accuracy across instruction phrasings, summarised by kind.

With no arguments it runs the built-in default: SmolLM2-135M-Instruct on the BIG-bench
Lite multiple-choice tasks, each task's designer instruction plus heedful's built-in
phrasings, on a seeded sample of each task (Sun et al. 2023, sections 3-4).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.analysis.paired import render_paired_table
from heedful.analysis.robustness import render_robustness_table, robustness_report
from heedful.analysis.runs import load_run
from heedful.commands import options as opt
from heedful.commands.eval import config_from_options
from heedful.io import write_json_atomic
from heedful.progress import stdout_console
from heedful.provenance import environment
from heedful.rundir import RunDir

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.

DEFAULT_LIMIT = 3  # per task or subtask: bbl-mc has 47; ~1,400 prompts, ~8 min on 2 CPU cores


def robustness_command(
    model: opt.Model = "smollm2-135m-instruct",
    tasks: opt.Tasks = "bigbench:bbl-mc",
    instructions: opt.Instructions = "designer,heedful",
    kinds: opt.Kinds = None,
    collections: opt.Collections = None,
    shots: opt.Shots = 0,
    limit: opt.Limit = DEFAULT_LIMIT,
    split: opt.Split = "test",
    seed: opt.Seed = 0,
    shuffle_options: opt.ShuffleOptions = True,
    scoring: opt.Scoring = "sum",
    dtype: opt.Dtype = "float32",
    device: opt.Device = "cpu",
    adapter: opt.Adapter = None,
    chat: opt.Chat = False,
    truncation: opt.Truncation = "left",
    on_unfit: opt.OnUnfit = "skip",
    batch_size: opt.BatchSize = 8,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% confidence intervals.")] = 1000,
    from_dir: Annotated[
        Optional[Path], typer.Option("--from", help="Summarise an existing eval output folder instead of running.")
    ] = None,
    out: opt.Out = Path("runs/robustness"),
) -> None:
    """Accuracy across instruction phrasings by kind (observed, unobserved, designer...)."""
    if from_dir is not None:
        run = load_run(from_dir)
        records, config_info, target = run.records, run.config, from_dir
    else:
        from heedful.evaluate.runner import evaluate

        config = config_from_options(
            model=model, tasks=tasks, instructions=instructions, kinds=kinds, collections=collections, shots=shots,
            limit=limit, split=split, seed=seed, shuffle_options=shuffle_options, scoring=scoring, dtype=dtype,
            device=device, adapter=adapter, chat=chat, max_new_tokens=64, stop=None, truncation=truncation,
            on_unfit=on_unfit, batch_size=batch_size,
        )
        result = evaluate(config, out)
        records = result.records
        target = out
        config_info = dataclasses.asdict(config)  # what results.json stores as "config"
    report = robustness_report(records, n_bootstrap=n_bootstrap, seed=seed)

    write_json_atomic(
        RunDir(target).robustness,
        {"config": config_info, "n_bootstrap": n_bootstrap, "seed": seed, "environment": environment(), **report},
    )
    stdout_console().print(render_robustness_table(report["rows"]))
    if "observed_vs_unobserved" in report:
        stdout_console().print(render_paired_table(report["observed_vs_unobserved"]))
    typer.echo(f"robustness: {RunDir(target).robustness}", err=True)
