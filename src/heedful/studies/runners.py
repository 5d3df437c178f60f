"""What each command does with its config: the one implementation the CLI and the study executors share.

A runner writes every file of its run folder (the command's results and the resolved
``config.yaml``) and returns what the CLI prints; it prints nothing itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heedful.analysis.config import AuditConfig, RepresentationsConfig, RobustnessConfig
from heedful.analysis.representations import distance_summary, nearest_reference_distances
from heedful.analysis.robustness import robustness_report
from heedful.analysis.runs import load_run
from heedful.configs import save_config
from heedful.evaluate.config import EvalConfig
from heedful.evaluate.representations import first_token_representations
from heedful.evaluate.runner import EvalResult, evaluate
from heedful.io import write_json_atomic, write_npz_atomic
from heedful.models.loading import load_configured
from heedful.perturbations.config import ParaphraseConfig
from heedful.perturbations.label_space import load_label_space_file
from heedful.perturbations.paraphrase import generate_paraphrases
from heedful.perturbations.variants import base_instructions, resolve_label_space
from heedful.prompts.collection import save_collection
from heedful.prompts.sources import InstructionSources
from heedful.provenance import environment
from heedful.rundir import RunDir
from heedful.tasks.spec import load_tasks
from heedful.train.config import TrainConfig
from heedful.train.recipes import run_training
from heedful.train.units import UnitResult


def run_eval(config: EvalConfig, *, show_progress: bool = True) -> EvalResult:
    """Evaluate every (task x instruction) pair into ``config.out``."""
    result = evaluate(config, show_progress=show_progress)
    save_config(config, config.out)
    return result


def run_robustness(config: RobustnessConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate (or read the finished eval ``from_run``), then summarise by kind into ``OUT/robustness.json``."""
    if config.from_run is not None:
        finished = load_run(Path(config.from_run))
        records, evaluated = finished.records, finished.config
    else:
        records, evaluated = evaluate(config, show_progress=show_progress).records, dataclasses.asdict(config)
    report = robustness_report(records, n_bootstrap=config.n_bootstrap, seed=config.seed)
    RunDir(config.out).path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        RunDir(config.out).robustness,
        {"config": dataclasses.asdict(config), "evaluation": evaluated, "environment": environment(), **report},
    )
    save_config(config, config.out)
    return report


def run_representations(config: RepresentationsConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """First-decoded-token vectors of every prompt and their distances to the reference kinds."""
    backend = load_configured(config.model)
    vectors, labels, skipped = first_token_representations(
        config.prompt_plan(), backend, layer=config.layer, show_progress=show_progress
    )
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
    return summary


def run_train(config: TrainConfig, *, show_progress: bool = True) -> list[UnitResult]:
    """Train every unit of ``config`` (STL: one per task, MTL: one) and evaluate each."""
    results = run_training(config, show_progress=show_progress)
    save_config(config, config.out)
    return results


def run_paraphrase(config: ParaphraseConfig, *, show_progress: bool = True) -> list[tuple[str, str, int]]:
    """Paraphrase each task's base instructions and save them as a collection at ``config.out``.

    Returns ``(task, instruction id, paraphrases kept)`` per base instruction.
    """
    prompts = config.prompts
    spaces = load_label_space_file(prompts.label_spaces) if prompts.label_spaces else None
    sources = InstructionSources.parse(prompts.instructions, kinds=prompts.kinds, collections=prompts.collections)
    backend = None if config.endpoint else load_configured(config.model)
    collected, kept = [], []
    for task in load_tasks(config.data.tasks, seed=config.seed):
        labels, _, _ = resolve_label_space(task, spaces)
        for base in base_instructions(sources.for_task(task)):
            found = generate_paraphrases(
                base, config.k, seed=config.seed, task=task, label_space=labels, backend=backend,
                endpoint=config.endpoint, model_name=config.model.name, threshold=config.threshold,
            )
            collected.extend(found)
            kept.append((task.name, base.id, len(found)))
    if not collected:  # an empty collection is still written: the units after it train without paraphrases
        logging.getLogger("heedful").warning(
            "paraphrase: no paraphrase of %d instructions passed the filters (placeholders kept, similarity >= %s); "
            "try a stronger model (--endpoint) or a lower --threshold", len(kept), config.threshold)
    Path(config.out).parent.mkdir(parents=True, exist_ok=True)
    save_collection(collected, config.out)  # each paraphrase records its seed, generator and source
    return kept


def run_audit(config: AuditConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """The audit's evaluation, search and measures into ``OUT/audit.json`` (see :mod:`heedful.studies.audit`)."""
    from heedful.studies.audit import run_audit as audit

    report = audit(config, show_progress=show_progress)
    save_config(config, config.out)
    return report


RUNNERS: dict[str, Callable[..., Any]] = {
    "eval": run_eval,
    "robustness": run_robustness,
    "representations": run_representations,
    "train": run_train,
    "paraphrase": run_paraphrase,
    "audit": run_audit,
}
