"""The report's sections: which figures the given units support, with the data each figure draws.

A builder looks at the units it is given and returns the sections their data supports;
nothing is keyed to a study's name, so a user's own study gets the same figures when it
has the same shape:

* :func:`kinds` — each evaluation with several instruction kinds: the kinds by task type
  (Sun et al.'s Table 3, or §4.3's variants), and per task.
* :func:`axes` — evaluations that differ in one grid axis only: lines over it (§4.4's
  scaling over ``model``, §4.6's ``shots``).
* :func:`alignment` — evaluations of trained models beside the same evaluation of the
  model before training (Table 5), and their representation distances (Table 6).
* :func:`representations` — a t-SNE of first-decoded-token states, and distance vs
  accuracy drop with a fitted line.
* :func:`efficiency` — Gupta's ROUGE-L over training budgets, the baseline and where each
  curve first matches it, per category.
* :func:`alterations` — Kung & Peng's exact match per instruction alteration, with the
  random-guess and majority baselines.
* :func:`scores` — every (unit, task, instruction): score, CI and n (a sortable table).

Intervals are 95% bootstrap CIs over instances unless a caption says otherwise.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heedful.analysis.audit import FORMAT_KIND, PHRASING_KINDS
from heedful.analysis.grouping import OVERALL
from heedful.analysis.robustness import summarize_by_kind
from heedful.report import plots
from heedful.report.sources import ReportUnit
from heedful.report.stats import line_fit, mean_ci

TASK_TYPES = ("QA", "BC", "MC")
KIND_ORDER = ("designer", "observed", "unobserved", "paraphrase", "closest", "negated_closest", "incorrect", "negated",
              "nonsense", "simplified", "delusive", "none")
METHOD_NAMES = {"full": "FT", "prefix": "PT", "lora": "LoRA", "prompt": "prompt tuning"}


@dataclass
class Figure:
    """One figure: its PNG and its data (rows of the CSV beside it)."""

    name: str
    title: str
    caption: str
    rows: list[dict[str, Any]]
    units: list[str]
    draw: Callable[[Path], None] | None = None
    """Draws the PNG at the given path; None for a table-only item."""


@dataclass
class Section:
    title: str
    text: str
    figures: list[Figure] = field(default_factory=list)
    points: list[str] = field(default_factory=list)
    """Sentences shown as a list under the text (an audit's verdict)."""


@dataclass(frozen=True)
class Settings:
    n_bootstrap: int = 1000
    seed: int = 0
    baseline_model: str | None = None


def _kind_key(kind: str) -> tuple[int, str]:
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), kind)


def _evaluated(units: Sequence[ReportUnit]) -> list[ReportUnit]:
    return [u for u in units if u.records]


def _slug(text: str) -> str:
    """A file-name-safe form of ``text``; a short hash keeps two ids that read alike apart."""
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    readable = "-".join(part for part in keep.split("-") if part)[:60]
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def _name(unit: ReportUnit) -> str:
    return unit.id.split("[", 1)[0]


def _percent(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(100 * value, 2)


# kinds --------------------------------------------------------------------------------------

def _kind_rows(unit: ReportUnit, settings: Settings) -> list[dict[str, Any]]:
    rows = []
    for s in summarize_by_kind(unit.records, n_bootstrap=settings.n_bootstrap, seed=settings.seed):
        rows.append({"unit": unit.id, "tasks": s.task, "kind": s.kind, "mean_%": _percent(s.mean),
                     "ci_low_%": _percent(s.ci_low), "ci_high_%": _percent(s.ci_high), "std_%": _percent(s.std),
                     "worst_case_%": _percent(s.worst_case), "pdr": s.pdr, "n_phrasings": s.n_phrasings,
                     "n_examples": s.n_examples, "n_tasks": s.n_tasks})
    return rows


def _fractions(row: dict[str, Any]) -> tuple[float, float, float]:
    """A row's mean and CI in percent as fractions; NaN where a value is missing (never 0)."""
    return tuple(math.nan if row.get(k) is None else row[k] / 100 for k in ("mean_%", "ci_low_%", "ci_high_%"))


def _cells(rows: list[dict[str, Any]], group: str, series: str) -> dict[tuple[str, str], tuple[float, float, float]]:
    return {(r[group], r[series]): _fractions(r) for r in rows}


def kinds(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Per evaluation with two or more instruction kinds: kinds by task type, and per task."""
    figures = []
    for unit in _evaluated(units):
        found = sorted({r.instruction_kind for r in unit.records}, key=_kind_key)
        if len(found) < 2 or unit.baselines or unit.audit:  # see alterations and audit
            continue
        rows = _kind_rows(unit, settings)
        groups = [g for g in (*(f"{OVERALL} {t}" for t in TASK_TYPES), OVERALL) if any(r["tasks"] == g for r in rows)]
        overall = [r for r in rows if r["tasks"] in groups]
        metric = "/".join(sorted({r.metric for r in unit.records}))
        labels = {g: ("all tasks" if g == OVERALL else g.split(" ", 1)[1]) for g in groups}
        figures.append(Figure(
            name=f"kinds-{_slug(unit.id)}", title=f"{unit.id}: score by instruction kind",
            caption=(f"Mean {metric} per instruction kind over {'each task type and ' if len(groups) > 1 else ''}all "
                     "tasks (the mean over tasks of the phrasings' mean), with a 95% bootstrap CI over instances "
                     "stratified by task."),
            rows=overall, units=[unit.id],
            draw=lambda path, overall=overall, groups=groups, found=found, labels=labels, metric=metric: plots.grouped_bars(
                path, groups=[labels[g] for g in groups], series=found,
                values={(labels[g], s): v for (g, s), v in _cells(overall, "tasks", "kind").items() if g in labels},
                ylabel=f"{metric} (%)", title="score by instruction kind"),
        ))
        tasks = sorted({r.task for r in unit.records})
        if len(tasks) > 1:
            per_task = [r for r in rows if not r["tasks"].startswith(OVERALL)]
            figures.append(Figure(
                name=f"tasks-{_slug(unit.id)}", title=f"{unit.id}: score per task and kind",
                caption=f"Mean {metric} per task (over its phrasings of each kind), 95% bootstrap CI over instances.",
                rows=per_task, units=[unit.id],
                draw=lambda path, per_task=per_task, tasks=tasks, found=found, metric=metric: plots.task_dots(
                    path, tasks=tasks, series=found, values=_cells(per_task, "tasks", "kind"),
                    xlabel=f"{metric} (%)", title="score per task"),
            ))
    if not figures:
        return []
    return [Section("Instruction kinds", "Each evaluation's scores by the kind of instruction it was given "
                    "(Sun et al. 2023, Table 3 and §4.3).", figures)]


# one grid axis ------------------------------------------------------------------------------

def axes(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Evaluations of one study unit that differ only in one grid axis: a line per kind over that axis."""
    figures = []
    by_name: dict[str, list[ReportUnit]] = defaultdict(list)
    for unit in _evaluated(units):
        if unit.axes:
            by_name[_name(unit)].append(unit)
    for name, group in by_name.items():
        for axis in group[0].axes:
            if any(isinstance(u.axes.get(axis), bool) for u in group):
                continue  # a switch (e.g. label_options: the scoring mode) is no axis to draw a line over
            values = list(dict.fromkeys(str(u.axes.get(axis)) for u in group))
            others = {json.dumps({k: v for k, v in u.axes.items() if k != axis}, sort_keys=True) for u in group}
            if len(values) < 2 or len(others) != 1:
                continue
            rows = []
            for unit in group:
                for r in _kind_rows(unit, settings):
                    if r["tasks"] == OVERALL:
                        rows.append({axis: str(unit.axes[axis]), **r})
            found = sorted({r["kind"] for r in rows}, key=_kind_key)
            series = {k: {r[axis]: _fractions(r) for r in rows if r["kind"] == k} for k in found}
            what = {"model": "Scaling over models (Sun et al. 2023, §4.4)",
                    "shots": "Zero-shot vs one-shot (Sun et al. 2023, §4.6, Fig. 6)"}.get(axis, f"Over {axis}")
            figures.append(Figure(
                name=f"axis-{_slug(name)}-{_slug(axis)}", title=f"{name}: {what}",
                caption=(f"Mean score over all tasks per instruction kind at each {axis}, 95% bootstrap CI over "
                         "instances (bands). The gap between kinds at each point is the degradation."),
                rows=rows, units=[u.id for u in group],
                draw=lambda path, values=values, series=series, axis=axis, what=what: plots.lines(
                    path, xs=values, series=series, xlabel=axis, ylabel="score (%)", title=what),
            ))
    if not figures:
        return []
    return [Section("Across a grid axis", "Units of one study that differ in a single axis of the grid.", figures)]


# alignment ----------------------------------------------------------------------------------

def _trained_by_folder(units: Sequence[ReportUnit]) -> dict[str, ReportUnit]:
    found = {}
    for unit in units:
        if unit.command == "train" and unit.folder:
            found[str(Path(unit.folder).resolve())] = unit
            found[Path(unit.folder).name] = unit
    return found


def trained_from(unit: ReportUnit, trained: dict[str, ReportUnit]) -> ReportUnit | None:
    """The train unit whose model (or adapter) ``unit`` evaluates, if it is one of the units."""
    model = unit.config.get("model") or {}
    for ref in (model.get("name"), model.get("adapter")):
        if not ref:
            continue
        path = Path(str(ref))
        for candidate in (path, path.parent):  # a train folder, or its final/ adapter
            for key in (str(candidate.resolve()), candidate.name):
                if key in trained:
                    return trained[key]
    return None


def arm_label(train: ReportUnit | None) -> str:
    """``before`` for an untrained model; else FT / PT (+KL) / LoRA... from the train unit's config."""
    if train is None:
        return "before"
    method = (train.config.get("method") or {}).get("name", "")
    kl = float((train.config.get("loop") or {}).get("kl_weight") or 0.0)
    prompts = train.config.get("prompts") or {}
    label = METHOD_NAMES.get(method, method)
    if kl > 0:
        label += f"+KL (λ={kl:g})"
    alteration = prompts.get("alteration")
    if alteration and alteration != "none":
        label += f", {alteration}"
    if str(prompts.get("instructions", "")).endswith(":none"):
        label += ", no instructions"
    return label


def _unique_labels(arms: list[tuple[str, ReportUnit]]) -> list[tuple[str, ReportUnit]]:
    """Arm labels, with the unit's id added where two arms would read the same (their bars would overwrite)."""
    counts: dict[str, int] = defaultdict(int)
    for label, _ in arms:
        counts[label] += 1
    return [(label if counts[label] == 1 else f"{label} ({unit.id})", unit) for label, unit in arms]


def _comparable(unit: ReportUnit) -> str:
    """The unit's config without its model and output folder: equal for the same evaluation of two models."""
    config = {k: v for k, v in unit.config.items() if k not in ("model", "out")}
    return json.dumps({"command": unit.command, **config}, sort_keys=True, default=str)


def alignment(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Table 5 (kinds before and after each training arm) and Table 6 (distances before and after)."""
    trained = _trained_by_folder(units)
    figures = []
    groups: dict[str, list[ReportUnit]] = defaultdict(list)
    for unit in units:
        if (unit.records and not unit.baselines) or unit.distances:
            groups[_comparable(unit)].append(unit)
    for group in groups.values():
        arms = _unique_labels([(arm_label(trained_from(u, trained)), u) for u in group])
        if len(arms) < 2 or all(label == "before" for label, _ in arms):
            continue
        labels = [label for label, _ in arms]
        if group[0].distances:
            rows = []
            for label, unit in arms:
                by_kind: dict[str, list[float]] = defaultdict(list)
                for d in unit.distances:
                    by_kind[d["kind"]].append(d["distance"])
                for kind, values in by_kind.items():
                    mean, low, high = mean_ci(values, n_bootstrap=settings.n_bootstrap, seed=settings.seed,
                                              name=unit.id + kind)
                    rows.append({"arm": label, "unit": unit.id, "kind": kind, "distance": mean, "ci_low": low,
                                 "ci_high": high, "n_instructions": len(values)})
            layer = group[0].config.get("layer")
            found = sorted({r["kind"] for r in rows}, key=_kind_key)
            figures.append(Figure(
                name=f"distances-{_slug(str(layer))}-{_slug(group[0].id)}",
                title=f"First-decoded-token distance to the nearest observed instruction, layer {layer}",
                caption=("Mean l2 distance of each instruction's first-decoded-token state to the nearest reference "
                         "instruction's, per instance (Sun et al. 2023, Table 6); 95% bootstrap CI over instructions."),
                rows=rows, units=[u.id for _, u in arms],
                draw=lambda path, rows=rows, labels=labels, found=found, layer=layer: plots.grouped_bars(
                    path, groups=labels, series=found,
                    values={(r["arm"], r["kind"]): (r["distance"], r["ci_low"], r["ci_high"]) for r in rows},
                    ylabel="l2 distance (hidden-state units)", title=f"distance to nearest observed, layer {layer}",
                    percent=False),
            ))
            continue
        rows = []
        for label, unit in arms:
            rows.extend({"arm": label, **r} for r in _kind_rows(unit, settings) if r["tasks"] == OVERALL)
        found = sorted({r["kind"] for r in rows}, key=_kind_key)
        figures.append(Figure(
            name=f"alignment-{_slug(group[0].id)}", title="Accuracy before and after each training arm",
            caption=("Mean score over all tasks per instruction kind, before training and after each arm "
                     "(Sun et al. 2023, Table 5); 95% bootstrap CI over instances stratified by task."),
            rows=rows, units=[u.id for _, u in arms],
            draw=lambda path, rows=rows, labels=labels, found=found: plots.grouped_bars(
                path, groups=labels, series=found, values=_cells(rows, "arm", "kind"), ylabel="accuracy (%)",
                title="before and after alignment"),
        ))
    if not figures:
        return []
    return [Section("Alignment", "Trained models beside the same measurement of the model before training.", figures)]


# representations ----------------------------------------------------------------------------

def representations(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Per representations unit: a t-SNE of its vectors by kind, and distance vs accuracy drop where an evaluation matches."""
    figures = []
    evaluations = _evaluated(units)
    for unit in units:
        if unit.command != "representations" or (unit.vectors is None and not unit.embedding):
            continue
        figures.append(_tsne_figure(unit, settings))
        match = next((e for e in evaluations if _same_prompts(e, unit)), None)
        if match is not None and unit.distances:
            figure = _drop_figure(unit, match)
            if figure is not None:
                figures.append(figure)
    if not figures:
        return []
    return [Section("Representations", "First-decoded-token hidden states (Sun et al. 2023, §4.5).", figures)]


def _same_prompts(evaluation: ReportUnit, unit: ReportUnit) -> bool:
    keys = ("model", "data", "prompts")
    return all(_strip(evaluation.config.get(k)) == _strip(unit.config.get(k)) for k in keys)


def _strip(section: Any) -> Any:
    return {k: v for k, v in (section or {}).items() if k not in ("batch_size",)} if isinstance(section, dict) else section


MAX_TSNE_POINTS = 3000


def _tsne_figure(unit: ReportUnit, settings: Settings) -> Figure:
    """The t-SNE of the unit's vectors; a unit read from a report's data brings its coordinates instead."""
    if unit.vectors is not None:
        vectors = np.asarray(unit.vectors["vectors"], dtype=np.float64)
        chosen = np.arange(len(vectors))
        if len(chosen) > MAX_TSNE_POINTS:  # a seeded sample keeps t-SNE's cost bounded
            chosen = np.sort(np.random.default_rng(settings.seed).choice(len(chosen), MAX_TSNE_POINTS, replace=False))
        coords = _tsne(vectors[chosen], settings.seed)
        labels = {name: [str(v) for v in np.asarray(unit.vectors[name])[chosen]] for name in (
            "task", "instruction_id", "instance_id", "kind")}
        unit.embedding = [{"task": labels["task"][i], "instruction_id": labels["instruction_id"][i],
                           "instance_id": labels["instance_id"][i], "kind": labels["kind"][i],
                           "x": float(coords[i, 0]), "y": float(coords[i, 1])} for i in range(len(chosen))]
    rows = list(unit.embedding or [])
    coords = np.array([[r["x"], r["y"]] for r in rows]).reshape(-1, 2)
    layer = unit.config.get("layer")
    return Figure(
        name=f"tsne-{_slug(unit.id)}", title=f"{unit.id}: t-SNE of first-decoded-token states (layer {layer})",
        caption=(f"t-SNE (scikit-learn, perplexity ≤ 30, seed {settings.seed}) of the layer-{layer} hidden state at the "
                 f"first decoded token of {len(rows)} prompts, coloured by instruction kind."),
        rows=rows, units=[unit.id],
        draw=lambda path, coords=coords, kinds_=[r["kind"] for r in rows]: plots.embedding(
            path, coords=coords, kinds=kinds_, title=f"t-SNE, layer {layer}"),
    )


def _tsne(vectors: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    if len(vectors) < 3:
        return np.zeros((len(vectors), 2))
    perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(vectors)


def _drop_figure(unit: ReportUnit, evaluation: ReportUnit) -> Figure | None:
    """Each instruction's distance vs its accuracy drop from the task's reference kind (observed, else designer)."""
    accuracy: dict[tuple[str, str], list[float]] = defaultdict(list)
    kind_of: dict[tuple[str, str], str] = {}
    for r in evaluation.records:
        accuracy[(r.task, r.instruction_id)].append(r.score)
        kind_of[(r.task, r.instruction_id)] = r.instruction_kind
    reference: dict[str, float] = {}
    for task in {t for t, _ in accuracy}:
        for ref_kind in ("observed", "designer"):
            scores = [np.mean(v) for (t, i), v in accuracy.items() if t == task and kind_of[(t, i)] == ref_kind]
            if scores:
                reference[task] = float(np.mean(scores))
                break
    points, rows = [], []
    for d in unit.distances:
        key = (d["task"], d["instruction_id"])
        if key in accuracy and d["task"] in reference:
            drop = reference[d["task"]] - float(np.mean(accuracy[key]))
            points.append((d["distance"], drop, d["kind"]))
            rows.append({"task": d["task"], "instruction_id": d["instruction_id"], "kind": d["kind"],
                         "distance": d["distance"], "accuracy_drop_%": round(100 * drop, 2)})
    if len(points) < 3:
        return None
    xs = np.array([p[0] for p in points])
    if np.ptp(xs) == 0:
        return None  # every distance equal: no line to fit
    grid = np.linspace(xs.min(), xs.max(), 50)
    fit = line_fit(xs, [p[1] for p in points], grid)
    rows.append({"task": "fit", "instruction_id": "", "kind": "", "distance": None,
                 "accuracy_drop_%": None, "slope_pts_per_unit": 100 * fit["slope"], "r": fit["r"], "p": fit["p"],
                 "n": fit["n"]})
    return Figure(
        name=f"distance-drop-{_slug(unit.id)}", title=f"{unit.id}: distance vs accuracy drop",
        caption=(f"Each instruction's mean distance to the nearest reference instruction (x) against its accuracy "
                 f"drop from the task's mean reference accuracy (observed, else designer; y), from {evaluation.id}. "
                 f"Least-squares line with its 95% CI band: slope {100 * fit['slope']:.3g} points per unit, "
                 f"r = {fit['r']:.2f}, p = {fit['p']:.2g}, n = {fit['n']} instructions."),
        rows=rows, units=[unit.id, evaluation.id],
        draw=lambda path, points=points, fit=fit, grid=grid: plots.scatter_fit(
            path, points=points, fit=fit, grid=grid, xlabel="distance to nearest reference (l2)",
            ylabel="accuracy drop (points)", title="distance vs accuracy drop"),
    )


# sample efficiency (Gupta) ------------------------------------------------------------------

def _budget_position(budget: str, numeric_max: float) -> float:
    return 2 * numeric_max if budget == "all" else float(budget)


def efficiency(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """ROUGE-L over budgets per (setting, instructions), the baseline, budgets needed to match it, categories."""
    curves: dict[tuple[str, str], dict[str, dict[str, tuple[float, float, float]]]] = defaultdict(lambda: defaultdict(dict))
    points = []
    plain = settings.baseline_model
    for unit in _evaluated(units):
        data = unit.config.get("data") or {}
        if unit.command != "train" or data.get("budget") in (None, ""):
            continue
        pre = bool(unit.config.get("init_from"))
        if pre and plain is None:
            plain = unit.model
        instructions = str((unit.config.get("prompts") or {}).get("instructions"))
        panel = (str(data.get("setting", "")).upper(), instructions)
        series = unit.model + (" + instruction pre-finetuning" if pre else "")
        values = [r.rouge_l for r in unit.records]
        mean, low, high = mean_ci(values, n_bootstrap=settings.n_bootstrap, seed=settings.seed, name=unit.id)
        curves[panel][series][str(data["budget"])] = (mean, low, high)
        points.append({"setting": panel[0], "instructions": instructions, "model": series, "pre_finetuned": pre,
                       "budget": str(data["budget"]), "unit": unit.id, "rouge_l_%": _percent(mean),
                       "ci_low_%": _percent(low), "ci_high_%": _percent(high), "n": len(values), "_unit": unit})
    if not points:
        return []
    if plain is None:
        plain = points[-1]["model"]
    figures, matches = [], []
    for (setting, instructions), series in curves.items():
        budgets = sorted({b for s in series.values() for b in s}, key=lambda b: math.inf if b == "all" else float(b))
        numeric = [float(b) for b in budgets if b != "all"] or [1.0]
        baseline_points = series.get(plain, {})
        baseline = None
        if baseline_points:
            top = budgets[-1] if budgets[-1] in baseline_points else max(baseline_points, key=lambda b: math.inf if b == "all" else float(b))
            baseline = (f"baseline: {plain} at budget {top}", baseline_points[top][0])
        marks = {}
        for name, curve in series.items():
            needed = None
            if baseline is not None:
                needed = next((b for b in budgets if b in curve and curve[b][0] >= baseline[1]), None)
                if needed is not None and name != plain:
                    marks[name] = needed
            matches.append({"setting": setting, "instructions": instructions, "model": name,
                            "baseline": baseline[0] if baseline else None,
                            "baseline_rouge_l_%": _percent(baseline[1]) if baseline else None,
                            "budget_to_match": needed if needed is not None else "not within the budgets",
                            "rouge_l_at_budgets_%": {b: _percent(curve[b][0]) for b in budgets if b in curve}})
        rows = [{k: v for k, v in p.items() if k != "_unit"} for p in points
                if p["setting"] == setting and p["instructions"] == instructions]
        title = f"{setting}, {instructions}"
        figures.append(Figure(
            name=f"efficiency-{_slug(setting)}-{_slug(instructions)}", title=f"ROUGE-L vs training budget: {title}",
            caption=("ROUGE-L (SuperNI's scorer) of each model fine-tuned at each budget of training instances per "
                     "task (log axis), 95% bootstrap CI over test instances (bands). The dashed line is the baseline: "
                     "the plain model at the largest budget (Gupta 2023's supervised baseline); a star marks where "
                     "a curve first reaches it."),
            rows=rows, units=[p["unit"] for p in rows],
            draw=lambda path, budgets=budgets, series=series, numeric=numeric, baseline=baseline, marks=marks,
            title=title: plots.lines(
                path, xs=budgets, series=dict(series), xlabel="training instances per task (log scale)",
                ylabel="ROUGE-L (%)", title=title, log_positions=[_budget_position(b, max(numeric)) for b in budgets],
                baselines=[baseline] if baseline else (), marks=marks),
        ))
    figures.append(Figure(
        name="efficiency-match", title="Training data needed to match the baseline",
        caption=("Per curve, the smallest budget at which its ROUGE-L reaches the baseline's (the plain model at the "
                 "largest budget, same setting and instructions)."),
        rows=matches, units=[p["unit"] for p in points],
    ))
    figures.extend(_category_figures(points, settings))
    return [Section("Sample efficiency", "Gupta 2023: instruction-tuned vs plain models fine-tuned at training budgets.",
                    figures)]


def _category_figures(points: list[dict[str, Any]], settings: Settings) -> list[Figure]:
    figures = []
    for setting, instructions in dict.fromkeys((p["setting"], p["instructions"]) for p in points):
        chosen = [p for p in points if p["setting"] == setting and p["instructions"] == instructions]
        top = max(chosen, key=lambda p: math.inf if p["budget"] == "all" else float(p["budget"]))["budget"]
        rows = []
        for p in (p for p in chosen if p["budget"] == top):
            by_category: dict[str, list[float]] = defaultdict(list)
            for r in p["_unit"].records:
                by_category[r.category or "(none)"].append(r.rouge_l)
            for category, values in sorted(by_category.items()):
                mean, low, high = mean_ci(values, n_bootstrap=settings.n_bootstrap, seed=settings.seed,
                                          name=p["unit"] + category)
                rows.append({"model": p["model"], "category": category, "budget": top, "unit": p["unit"],
                             "mean_%": _percent(mean), "ci_low_%": _percent(low), "ci_high_%": _percent(high),
                             "n": len(values)})
        categories = sorted({r["category"] for r in rows})
        models = list(dict.fromkeys(r["model"] for r in rows))
        figures.append(Figure(
            name=f"categories-{_slug(setting)}-{_slug(instructions)}",
            title=f"ROUGE-L per category at budget {top}: {setting}, {instructions}",
            caption="ROUGE-L per SuperNI category at the largest budget, 95% bootstrap CI over test instances.",
            rows=rows, units=[r["unit"] for r in rows],
            draw=lambda path, rows=rows, categories=categories, models=models: plots.grouped_bars(
                path, groups=categories, series=models, values=_cells(rows, "category", "model"),
                ylabel="ROUGE-L (%)", title="per category"),
        ))
    return figures


# instruction alterations (Kung & Peng) -------------------------------------------------------

ALTERATION_NAMES = {"designer": "original", "simplified": "simplified", "delusive": "delusive", "none": "none"}


def _alteration_arm(label: str) -> str:
    """``untuned``, or the method and the training prompts: ``LoRA: original``, ``LoRA: delusive``..."""
    if label == "before":
        return "untuned"
    method, _, prompts = label.partition(", ")
    return f"{method}: {prompts or 'original'}"


def alterations(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Per scoring mode: each model's score under each alteration, with the random-guess and majority lines."""
    trained = _trained_by_folder(units)
    by_mode: dict[str, list[ReportUnit]] = defaultdict(list)
    for unit in _evaluated(units):
        if unit.baselines:
            options = bool((unit.config.get("data") or {}).get("label_options"))
            by_mode["rank classification over the label space" if options else "generation"].append(unit)
    figures = []
    for mode, group in by_mode.items():
        # A label picked from the label space is right or wrong: exact match is its accuracy.
        measure = "exact match" if mode == "generation" else "accuracy"
        rows, per_task = [], []
        for unit in group:
            arm = _alteration_arm(arm_label(trained_from(unit, trained)))
            for r in _kind_rows(unit, settings):
                kind = ALTERATION_NAMES.get(r["kind"], r["kind"])
                target = rows if r["tasks"] == OVERALL else per_task
                if r["tasks"] == OVERALL or not r["tasks"].startswith(OVERALL):
                    target.append({"model": arm, "alteration": kind, **r})
        overall = group[0].baselines.get("overall") or {}
        lines_ = [(name, overall[key]) for name, key in (("random guess (expected)", "uniform_expected"),
                                                         ("majority label", "majority")) if overall.get(key) is not None]
        for name, value in lines_:
            rows.append({"model": name, "alteration": "", "mean_%": _percent(value)})
        arms = list(dict.fromkeys(r["model"] for r in rows if r["alteration"]))
        found = sorted({r["alteration"] for r in rows if r["alteration"]},
                       key=lambda k: (list(ALTERATION_NAMES.values()).index(k) if k in ALTERATION_NAMES.values() else 9, k))
        figures.append(Figure(
            name=f"alterations-{_slug(mode)}",
            title=f"{measure.capitalize()} per instruction alteration ({mode})",
            caption=("Mean exact match over tasks of each model (untuned, or tuned by the named method on the named "
                     "training prompts) "
                     "under each alteration of the evaluation instruction (Kung & Peng 2023), 95% bootstrap CI over "
                     "instances stratified by task. Lines: the random guess over the label space (expected) and the "
                     "train split's majority label, on the same instances."),
            rows=rows, units=[u.id for u in group],
            draw=lambda path, rows=rows, arms=arms, found=found, lines_=lines_, mode=mode, measure=measure: (
                plots.grouped_bars(
                    path, groups=arms, series=found,
                    values=_cells([r for r in rows if r["alteration"]], "model", "alteration"),
                    ylabel=f"{measure} (%)", title=mode, baselines=lines_)),
        ))
        tasks = sorted({r["tasks"] for r in per_task})
        task_base = group[0].baselines.get("tasks") or {}
        original = [r for r in per_task if r["alteration"] == "original"]
        for task in tasks:
            for name, key in (("random guess (expected)", "uniform_expected"), ("majority label", "majority")):
                value = (task_base.get(task) or {}).get(key)
                if value is not None:
                    original.append({"model": name, "alteration": "original", "tasks": task, "mean_%": _percent(value),
                                     "ci_low_%": None, "ci_high_%": None})
        series = list(dict.fromkeys(r["model"] for r in original))
        figures.append(Figure(
            name=f"alterations-tasks-{_slug(mode)}",
            title=f"{measure.capitalize()} per task, original instruction ({mode})",
            caption=("Per task: each model under the original instruction, 95% bootstrap CI over instances, beside "
                     "the task's random-guess expectation and majority-label score."),
            rows=original, units=[u.id for u in group],
            draw=lambda path, original=original, tasks=tasks, series=series, measure=measure: plots.task_dots(
                path, tasks=tasks, series=series, values=_cells(original, "tasks", "model"),
                xlabel=f"{measure} (%)", title="per task"),
        ))
    if not figures:
        return []
    return [Section("Instruction alterations", "Kung & Peng 2023: does the model use the instruction, or only the "
                    "output space?", figures)]


# every score --------------------------------------------------------------------------------

def scores(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Every (unit, task, instruction): kind, mean score, 95% CI, n: the sortable table."""
    rows = []
    for unit in _evaluated(units):
        cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        metric: dict[tuple[str, str, str], str] = {}
        for r in unit.records:
            key = (r.task, r.instruction_id, r.instruction_kind)
            cells[key].append(r.score)
            metric[key] = r.metric
        for (task, instruction, kind), values in sorted(cells.items()):
            mean, low, high = mean_ci(values, n_bootstrap=settings.n_bootstrap, seed=settings.seed,
                                      name=f"{unit.id}/{task}/{instruction}")
            rows.append({"unit": unit.id, "task": task, "instruction": instruction, "kind": kind,
                         "metric": metric[(task, instruction, kind)], "score_%": _percent(mean),
                         "ci_low_%": _percent(low), "ci_high_%": _percent(high), "n": len(values)})
    if not rows:
        return []
    return [Section("Every score", "One row per (unit, task, instruction); click a column to sort.",
                    [Figure("scores", "Scores per task and instruction", "Mean score over instances with a 95% "
                            "bootstrap CI over instances.", rows, [u.id for u in _evaluated(units)])])]


# audit ----------------------------------------------------------------------------------------

def audit(units: Sequence[ReportUnit], settings: Settings) -> list[Section]:
    """Per audit: the one-screen summary and verdict, then phrasing, format and reliance figures."""
    found = []
    for unit in units:
        if not unit.audit:
            continue
        a = unit.audit
        figures = [Figure(f"audit-summary-{_slug(unit.id)}", "Summary", "Every number the verdict rests on; intervals "
                          "are 95% bootstrap CIs over instances stratified by task.", _audit_summary(a), [unit.id])]
        for name, kinds_, what in (("phrasing", PHRASING_KINDS, "phrasing"), ("format", (FORMAT_KIND,), "format")):
            rows = _prompt_rows(unit, kinds_, settings)
            if len(rows) < 2:
                continue
            search = (a.get("search") or {}) if name == "format" else {}
            note = ""
            if search:
                note = (f" The bandit search over {search['pool']} layouts with {search['calls']} of {search['budget']} "
                        f"calls found the best {search['best']['id']} (P(best) = {search['best']['p']:.2f}) and the "
                        f"worst {search['worst']['id']} (P(worst) = {search['worst']['p']:.2f}).")
            figures.append(Figure(
                name=f"audit-{name}-{_slug(unit.id)}", title=f"Sensitivity to {what}",
                caption=(f"Accuracy of each {what} on each task, best first within a task, 95% bootstrap CI over "
                         f"instances.{note}"),
                rows=rows, units=[unit.id],
                draw=lambda path, rows=rows, what=what, a=a: plots.task_dots(
                    path, tasks=[r["label"] for r in rows], series=["accuracy"],
                    values={(r["label"], "accuracy"): _fractions(r) for r in rows},
                    xlabel="accuracy (%)", title=f"sensitivity to {what}", baselines=_audit_lines(a)),
            ))
        rows = [{"kind": r.get("kind"), "reference": r.get("reference"), "delta_%": _percent(r.get("mean_difference")),
                 "ci_low_%": _percent(r.get("ci_low")), "ci_high_%": _percent(r.get("ci_high")),
                 "p_permutation": r.get("p_permutation"), "mean_reference_%": _percent(r.get("mean_a")),
                 "mean_altered_%": _percent(r.get("mean_b")), "n": r.get("n_examples")}
                for r in a.get("reliance") or []]
        if rows:
            kind_rows = [r for r in _kind_rows(unit, settings) if r["tasks"] == OVERALL
                         and r["kind"] in ("designer", *(x["kind"] for x in rows))]
            order = sorted({r["kind"] for r in kind_rows}, key=_kind_key)
            figures.append(Figure(
                name=f"audit-reliance-{_slug(unit.id)}", title="Reliance on the instruction",
                caption=("Accuracy with the designer instruction and with each alteration of it, on the same instances "
                         "(mean over tasks, 95% bootstrap CI over instances stratified by task); lines: a uniform "
                         "random guess over the options and the majority label. The data holds the paired "
                         "differences with their CIs and permutation p-values."),
                rows=rows + kind_rows, units=[unit.id],
                draw=lambda path, kind_rows=kind_rows, order=order, a=a: plots.grouped_bars(
                    path, groups=order, series=["accuracy"],
                    values={(r["kind"], "accuracy"): _fractions(r) for r in kind_rows},
                    ylabel="accuracy (%)", title="reliance on the instruction", baselines=_audit_lines(a)),
            ))
        found.append(Section(f"Audit: {unit.model}", "Does the model read its instructions? Sensitivity to "
                             "phrasing and to format, and reliance on the instruction.", figures,
                             points=list(a.get("verdict") or [])))
    return found


def _audit_lines(a: dict[str, Any]) -> list[tuple[str, float]]:
    base = a.get("baselines") or {}
    return [(name, base[key]) for name, key in (("random guess (expected)", "chance"), ("majority label", "majority"))
            if base.get(key) is not None]


def _prompt_rows(unit: ReportUnit, kinds_: Sequence[str], settings: Settings) -> list[dict[str, Any]]:
    """Each (task, prompt)'s accuracy with its CI: prompts are compared within a task, never across tasks."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in unit.records:
        if r.instruction_kind in kinds_:
            cells[(r.task, r.instruction_id)].append(r.score)
    rows = []
    for (task, prompt), values in cells.items():
        mean, low, high = mean_ci(values, n_bootstrap=settings.n_bootstrap, seed=settings.seed, name=f"{task}/{prompt}")
        rows.append({"task": task, "prompt": prompt, "label": f"{task}: {prompt}", "mean_%": _percent(mean),
                     "ci_low_%": _percent(low), "ci_high_%": _percent(high), "n": len(values)})
    return sorted(rows, key=lambda r: (r["task"], -r["mean_%"]))


def _audit_summary(a: dict[str, Any]) -> list[dict[str, Any]]:
    def interval(entry: dict[str, Any] | None) -> str:
        if not entry:
            return "-"
        return f"{100 * entry['value']:.1f} [{100 * entry['low']:.1f}, {100 * entry['high']:.1f}]"
    rows = [{"measure": "model", "value": (a.get("config") or {}).get("model", {}).get("name")},
            {"measure": "tasks", "value": ", ".join(a.get("tasks") or [])},
            {"measure": "instances", "value": a.get("n_instances")},
            {"measure": "designer accuracy (%)", "value": _percent(a.get("reference_accuracy"))}]
    for name, key in (("random guess, expected (%)", "chance"), ("majority label (%)", "majority")):
        rows.append({"measure": name, "value": _percent((a.get("baselines") or {}).get(key))})
    for what in ("phrasing", "format"):
        s = a.get(what)
        if s:
            rows += [{"measure": f"{what}: prompts per task", "value": s["n_prompts"]},
                     {"measure": f"{what}: mean accuracy (%)", "value": interval(s["mean"])},
                     {"measure": f"{what}: spread, best − worst (points)", "value": interval(s["spread"])},
                     {"measure": f"{what}: worst case per instance (%)", "value": interval(s["worst_case"])}]
            if s.get("pdr"):
                rows.append({"measure": f"{what}: PDR vs designer (%)", "value": interval(s["pdr"])})
    if a.get("not_measured"):
        rows.append({"measure": "reliance: not measured on these tasks", "value": ", ".join(a["not_measured"])})
    for r in a.get("reliance") or []:
        rows.append({"measure": f"reliance: designer − {r['kind']} (points)",
                     "value": f"{100 * r['mean_difference']:+.1f} [{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}], "
                              f"p = {r['p_permutation']:.2g}"})
    return rows


BUILDERS: tuple[Callable[[Sequence[ReportUnit], Settings], list[Section]], ...] = (
    audit, alterations, efficiency, alignment, kinds, axes, representations, scores,
)
