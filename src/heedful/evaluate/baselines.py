"""Model-free baselines for classification tasks scored with exact match (Kung & Peng 2023).

Kung & Peng compare instruction-tuned models with a *random baseline* that guesses a
label of the task's label space: on SuperNI's classification tasks it matches models
trained with instructions in low-resource settings. Scores here are fractions (0..1)
like :func:`heedful.evaluate.metrics.score_generation` and every stored score: an instance
scores 1 when the guess matches any of its references under SuperNI's ``normalize_answer``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.evaluate.records import Record
from heedful.perturbations.label_space import load_label_space_file
from heedful.perturbations.variants import resolve_label_space
from heedful.tasks.normalize import normalize_answer
from heedful.tasks.types import Task, TaskType


@dataclass(frozen=True)
class SampledGuess:
    """Exact match of ``n_runs`` seeded uniform-guess runs.

    ``mean`` is the mean over runs, ``ci_low``/``ci_high`` its 95% Student-t interval;
    ``run_low``/``run_high`` are the 2.5th and 97.5th percentiles of single runs (the
    range a model's score must leave to beat chance on this test set).
    """

    mean: float
    ci_low: float
    ci_high: float
    run_low: float
    run_high: float
    n_runs: int
    seed: int


def _labels(label_space: Sequence[str]) -> tuple[str, ...]:
    # A label listed twice is still one label: guessing is uniform over distinct labels.
    labels = tuple(dict.fromkeys(label_space))
    if not labels:
        raise HeedfulError("the label space is empty: a guessing baseline needs at least one label")
    return labels


def _normalized_refs(references_per_instance: Sequence[Sequence[str]]) -> list[set[str]]:
    if len(references_per_instance) == 0:
        raise HeedfulError("no instances to score a baseline on")
    out = []
    for index, refs in enumerate(references_per_instance):
        if isinstance(refs, str):
            raise HeedfulError(f"instance {index}: references must be a list of strings, not one string")
        if len(refs) == 0:
            raise HeedfulError(f"instance {index}: no reference output")
        out.append({normalize_answer(r) for r in refs})
    return out


def uniform_guess_expected(references_per_instance: Sequence[Sequence[str]], label_space: Sequence[str]) -> float:
    """Expected exact match (fraction) of guessing a label uniformly at random per instance.

    Exact, not sampled: an instance contributes the fraction of labels that match one of
    its references, and the result is the mean of these fractions.
    """
    labels = [normalize_answer(label) for label in _labels(label_space)]
    refs = _normalized_refs(references_per_instance)
    hits = sum(sum(label in r for label in labels) for r in refs)
    return hits / (len(labels) * len(refs))


def sampled_guess(
    references_per_instance: Sequence[Sequence[str]],
    label_space: Sequence[str],
    *,
    seed: int,
    n_runs: int = 100,
) -> SampledGuess:
    """Run the uniform-guess baseline ``n_runs`` times with ``seed``; see :class:`SampledGuess`."""
    if n_runs < 1:
        raise HeedfulError(f"n_runs must be at least 1, got {n_runs}")
    labels = _labels(label_space)
    normalized = [normalize_answer(label) for label in labels]
    refs = _normalized_refs(references_per_instance)
    rng = random.Random(seed)
    runs = []
    for _ in range(n_runs):
        correct = sum(normalized[rng.randrange(len(labels))] in r for r in refs)
        runs.append(correct / len(refs))
    mean = sum(runs) / n_runs
    if n_runs > 1:
        from scipy.stats import t

        sd = math.sqrt(sum((x - mean) ** 2 for x in runs) / (n_runs - 1))
        half = float(t.ppf(0.975, n_runs - 1)) * sd / math.sqrt(n_runs)
    else:
        half = float("nan")
    ordered = sorted(runs)
    return SampledGuess(
        mean=mean,
        ci_low=mean - half,
        ci_high=mean + half,
        run_low=_percentile(ordered, 2.5),
        run_high=_percentile(ordered, 97.5),
        n_runs=n_runs,
        seed=seed,
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of sorted values (numpy's default method)."""
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def majority_label(train_labels: Sequence[str], label_space: Sequence[str]) -> str:
    """The label of ``label_space`` that the training outputs use most (ties: label-space order).

    Training outputs match labels under ``normalize_answer``; outputs outside the label
    space are ignored. No training output in the label space is an error.
    """
    labels = _labels(label_space)
    counts = Counter(normalize_answer(x) for x in train_labels)
    best = max(labels, key=lambda label: (counts[normalize_answer(label)], -labels.index(label)))
    if counts[normalize_answer(best)] == 0:
        raise HeedfulError("no training output is a label of the label space: no majority label")
    return best


def majority_baseline(
    references_per_instance: Sequence[Sequence[str]],
    label_space: Sequence[str],
    train_labels: Sequence[str],
) -> float:
    """Exact match (fraction) of always answering :func:`majority_label`."""
    guess = normalize_answer(majority_label(train_labels, label_space))
    refs = _normalized_refs(references_per_instance)
    return sum(guess in r for r in refs) / len(refs)


# ---------------------------------------------------------------------------------------
# The baselines section of an evaluation's results
# ---------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _model_scores_by_kind(records: Sequence[Record]) -> dict[str, dict[str, float]]:
    """task -> instruction kind -> mean exact match (fraction) over that kind's instructions.

    A record's ``exact_match`` is used when present (generation), else its ``score``
    (multiple choice accuracy); each instruction's mean counts once in its kind's mean.
    """
    per_instruction: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for rec in records:
        value = rec.exact_match if rec.exact_match is not None else rec.score
        per_instruction[(rec.task, rec.instruction_kind, rec.instruction_id)].append(value)
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (task, kind, _), values in per_instruction.items():
        grouped[task][kind].append(sum(values) / len(values))
    return {task: {kind: sum(v) / len(v) for kind, v in kinds.items()} for task, kinds in grouped.items()}


def _evaluated_references(task: Task, records: Sequence[Record]) -> list[list[str]]:
    """The references of the instances the model was evaluated on (all of the split if none)."""
    by_id = {inst.id: inst for inst in task.instances}
    seen: dict[str, list[str]] = {}
    for rec in records:
        if rec.task == task.name and rec.instance_id not in seen:
            inst = by_id.get(rec.instance_id)
            seen[rec.instance_id] = list(inst.references) if inst is not None else list(rec.references)
    if seen:
        return list(seen.values())
    return [list(inst.references) for inst in task.split("test")]


def _task_baselines(
    task: Task,
    labels: Sequence[str],
    label_source: str,
    refs: Sequence[Sequence[str]],
    model_scores: dict[str, float],
    *,
    seed: int,
    n_runs: int,
) -> dict[str, Any]:
    """One task's entry of the report: its label space, the three baselines and the model's scores."""
    sampled = sampled_guess(refs, labels, seed=seed, n_runs=n_runs)
    train = task.split("train") or [i for i in task.instances if i.split != "test"]
    train_labels = [ref for inst in train for ref in inst.references]
    try:
        majority: str | None = majority_label(train_labels, labels)
        majority_score: float | None = majority_baseline(refs, labels, train_labels)
    except HeedfulError:
        majority, majority_score = None, None  # no training output in the label space
    return {
        "category": task.category,
        "label_space": list(labels),
        "label_source": label_source,
        "n_instances": len(refs),
        "uniform_expected": uniform_guess_expected(refs, labels),
        "sampled": dataclasses.asdict(sampled),
        "majority_label": majority,
        "majority": majority_score,
        "model": model_scores,
    }


def baseline_report(
    tasks: Sequence[Task],
    records: Sequence[Record],
    *,
    label_spaces_file: str | Path | None = None,
    seed: int = 0,
    n_runs: int = 100,
) -> dict[str, Any]:
    """Random and majority baselines beside the model's scores, per task, category and overall.

    All numbers are exact match as **fractions** (0..1), the unit of every stored score;
    model scores come from the evaluation ``records`` (``exact_match``, or ``score`` for
    multiple choice) as the mean over the instructions of each kind. Baselines are
    computed on the instances the model was evaluated on. A task qualifies when it has a closed label space: from
    ``label_spaces_file`` (Yin et al.'s ``label_space.json`` format; free text there means
    open generation), else ``task.label_space``, else at most 20 distinct training outputs.
    Per task: the exact uniform-guess expectation, ``n_runs`` seeded uniform-guess runs
    (mean, 95% CI of the mean, 2.5-97.5 percentile of single runs) and the majority label
    of the train split with its score. Other tasks are listed under ``not_applicable``
    with the reason. Category and overall entries are unweighted means over tasks.
    """
    label_spaces = load_label_space_file(label_spaces_file) if label_spaces_file else None
    model = _model_scores_by_kind(records)
    per_task: dict[str, dict[str, Any]] = {}
    not_applicable: dict[str, str] = {}
    for task in tasks:
        if task.type is TaskType.MULTIPLE_CHOICE:
            not_applicable[task.name] = "multiple choice with per-instance options (no shared label space)"
            continue
        labels, _, source = resolve_label_space(task, label_spaces)
        if not labels:
            not_applicable[task.name] = "open generation (no closed label space)"
            continue
        per_task[task.name] = _task_baselines(
            task, labels, source, _evaluated_references(task, records), model.get(task.name, {}),
            seed=seed, n_runs=n_runs,
        )
    return {
        "units": "exact match, fraction (0-1)",
        "seed": seed,
        "n_runs": n_runs,
        "tasks": per_task,
        "categories": {
            category: _aggregate([e for e in per_task.values() if e["category"] == category])
            for category in sorted({e["category"] for e in per_task.values()})
        },
        "overall": _aggregate(list(per_task.values())),
        "not_applicable": not_applicable,
    }


def _aggregate(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    kinds = sorted({kind for e in entries for kind in e["model"]})
    majority = [e["majority"] for e in entries if e["majority"] is not None]
    return {
        "n_tasks": len(entries),
        "uniform_expected": _mean([e["uniform_expected"] for e in entries]),
        "sampled_mean": _mean([e["sampled"]["mean"] for e in entries]),
        "majority": _mean(majority),
        "n_tasks_majority": len(majority),
        "model": {kind: _mean([e["model"][kind] for e in entries if kind in e["model"]]) for kind in kinds},
    }
