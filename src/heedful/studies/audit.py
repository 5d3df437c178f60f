"""``heedful audit``: one evaluation of phrasings, layouts and alterations, then the measures and the verdict.

The audit is a recipe over existing parts: the format grammar writes its layouts as an
instruction collection (``OUT/formats.jsonl``), one evaluation scores the designer
instruction, its phrasings, those layouts and the alterations on the same instances
(resumable like every evaluation), a bandit search over the whole grammar spends
``budget`` further model calls (cached in the same store), and
:mod:`heedful.analysis.audit` turns the records into ``OUT/audit.json``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from heedful.analysis.audit import FORMAT_KIND, PHRASING_KINDS, reliance, sensitivity, verdict
from heedful.analysis.config import AuditConfig
from heedful.errors import UserError
from heedful.evaluate.bandit import search_extremes
from heedful.evaluate.records import Record
from heedful.evaluate.runner import assign_keys, compute_outputs, evaluate, make_record, plan_work
from heedful.io import write_json_atomic
from heedful.models.loading import load_configured
from heedful.perturbations.formats import all_formats, format_instruction, sample_formats
from heedful.prompts.collection import save_collection
from heedful.provenance import environment
from heedful.rundir import RunDir
from heedful.store import Store
from heedful.tasks.sampling import select_instances
from heedful.tasks.spec import load_data
from heedful.tasks.types import Task


def instruction_text(task: Task) -> str:
    """What a layout wraps: the task's own prompt prefix (BIG-bench), else its definition."""
    prefix = task.bigbench_format.task_prefix.strip() if task.bigbench_format is not None else ""
    return prefix or task.definition


def write_formats(tasks: Sequence[Task], formats: Sequence[Any], path: Path) -> None:
    # answers stay the option text, as with the designer instruction: only the layout changes
    save_collection([format_instruction(instruction_text(t), f, task_name=t.name, answer="text", task_type=None)
                     for t in tasks for f in formats],
                    path)


def run_audit(config: AuditConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate, search, measure; writes ``OUT/audit.json`` and returns it."""
    _check(config)
    files = RunDir(config.out)
    files.path.mkdir(parents=True, exist_ok=True)
    tasks = load_data(config.data, seed=config.seed)
    formats = sample_formats(config.formats, config.seed) if config.formats else []
    if formats:
        write_formats(tasks, formats, files.formats)
    backend = load_configured(config.model)
    evaluation = config.evaluation(str(files.formats) if formats else None)
    result = evaluate(evaluation, backend=backend, show_progress=show_progress)
    records = result.records
    search = _search(config, tasks, backend) if config.budget else None
    phrasing = sensitivity(records, PHRASING_KINDS, n_bootstrap=config.n_bootstrap, seed=config.seed)
    fmt = sensitivity(records, (FORMAT_KIND,), reference=None, n_bootstrap=config.n_bootstrap, seed=config.seed)
    relied = reliance(records, kinds=config.reliance, n_bootstrap=config.n_bootstrap, seed=config.seed)
    base = baselines(records, tasks, config)
    designer = [r for r in records if r.instruction_kind == "designer"]
    reference_accuracy = _task_mean(designer) if designer else None
    report = {
        "config": dataclasses.asdict(config),
        "environment": environment(),
        "seeds": {"seed": config.seed},
        "tasks": sorted({r.task for r in records}),
        "n_instances": len({(r.task, r.instance_id) for r in records}),
        "reference_accuracy": reference_accuracy,
        "baselines": base,
        "phrasing": None if phrasing is None else dataclasses.asdict(phrasing),
        "format": None if fmt is None else dataclasses.asdict(fmt),
        "formats": [{"id": f"format/{f.id}", "description": f.describe()} for f in formats],
        "search": search,
        "reliance": relied,
        # an alteration that fits no task (simplified needs a label space, delusive demonstrations)
        "not_measured": [k for k in config.reliance if k not in {r["kind"] for r in relied}],
        "skipped": result.skipped,
        "verdict": verdict(phrasing, fmt, relied, base, reference_accuracy),
    }
    if report["not_measured"]:
        report["verdict"].append(f"Not measured on these tasks: {', '.join(report['not_measured'])} (simplified needs a "
                                 "label space, delusive an encoding with demonstrations; see skipped).")
    write_json_atomic(files.audit, report)
    return report


def _check(config: AuditConfig) -> None:
    """Settings that would fail only after the evaluation: fail before the model loads."""
    if config.n_bootstrap < 1:
        raise UserError(f"n_bootstrap: at least 1, got {config.n_bootstrap}")
    if config.formats < 0:
        raise UserError(f"formats: 0 or more, got {config.formats}")
    if config.budget is not None and config.budget < 2:
        raise UserError(f"budget: at least 2 model calls (half find the best layout, half the worst), got {config.budget}")


def _task_mean(records: Sequence[Record]) -> float:
    by_task: dict[str, list[float]] = defaultdict(list)
    for r in records:
        by_task[r.task].append(r.score)
    return float(np.mean([np.mean(v) for v in by_task.values()]))


def baselines(records: Sequence[Record], tasks: Sequence[Task], config: AuditConfig) -> dict[str, Any]:
    """Chance (a uniform guess over each instance's options) and the train split's majority label.

    The majority label applies to a task whose instances share one option set; it is the
    most frequent gold option among the task's training instances, never its test ones.
    Means over tasks, as the model's scores are.
    """
    designer = [r for r in records if r.instruction_kind == "designer" and r.options]
    chance: dict[str, list[float]] = defaultdict(list)
    for r in designer:
        chance[r.task].append(1 / len(r.options))
    majority: dict[str, float] = {}
    for task in tasks:
        evaluated = [r for r in designer if r.task == task.name]
        option_sets = {frozenset(r.options) for r in evaluated}
        if len(option_sets) != 1:
            continue
        train = select_instances(task, "train", budget=None, seed=config.seed)
        golds = Counter(i.options[i.gold] for i in train if i.options is not None and i.gold is not None)
        if golds:
            label = golds.most_common(1)[0][0]
            majority[task.name] = float(np.mean([str(r.references[0]).strip() == label.strip() for r in evaluated]))
    return {
        "chance": float(np.mean([np.mean(v) for v in chance.values()])) if chance else None,
        "majority": float(np.mean(list(majority.values()))) if majority else None,
        "majority_tasks": sorted(majority),
        "per_task": {t: {"chance": float(np.mean(v)), "majority": majority.get(t)} for t, v in chance.items()},
    }


def _search(config: AuditConfig, tasks: Sequence[Task], backend: Any) -> dict[str, Any]:
    """FormatSpread's search: the best and the worst layout of the whole grammar within ``budget`` calls."""
    files = RunDir(config.out)
    pool = all_formats()
    pool_file = files.path / "format-pool.jsonl"
    write_formats(tasks, pool, pool_file)
    base = config.evaluation(None)
    evaluation = dataclasses.replace(base, prompts=dataclasses.replace(base.prompts, instructions=str(pool_file),
                                                                       perturb=None))
    items, _ = plan_work(tasks, evaluation, backend)  # a layout that does not fit a task is skipped there
    assign_keys(items, evaluation)
    instances = sorted({(it.task.name, it.instance.id) for it in items})
    position = {instance: i for i, instance in enumerate(instances)}  # ~20k items: no list.index per item
    cells: dict[str, dict[int, Any]] = defaultdict(dict)
    for it in items:
        cells[it.instruction.id][position[(it.task.name, it.instance.id)]] = it
    # only layouts that render every instance compete: an unfit one would look like the worst
    fitting = [i for i, f in enumerate(pool) if len(cells[f"format/{f.id}"]) == len(instances)]
    pool = [pool[i] for i in fitting]
    arms = [f"format/{f.id}" for f in pool]
    by_cell = {(a, i): it for a, arm in enumerate(arms) for i, it in cells[arm].items()}
    with Store(files.store) as store:
        def score(arm: int, instance: int) -> float:
            item = by_cell[(arm, instance)]
            output = store.get_outputs({item.key}).get(item.key)
            if output is None:
                output = compute_outputs(backend, [item], evaluation)[item.key]
                store.put_outputs({item.key: output})
            return make_record(item, output, evaluation).score

        found = search_extremes(score, len(arms), len(instances), budget=config.budget, seed=config.seed)
    return {
        "budget": found.budget, "calls": found.calls, "pool": len(arms), "instances": len(instances),
        "unfit_layouts": len(all_formats()) - len(arms),
        "best": {"id": arms[found.best], "description": pool[found.best].describe(), "mean": found.means[found.best],
                 "pulls": found.pulls[found.best], "p": found.p_best},
        "worst": {"id": arms[found.worst], "description": pool[found.worst].describe(),
                  "mean": found.means[found.worst], "pulls": found.pulls[found.worst], "p": found.p_worst},
    }
