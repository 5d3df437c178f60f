"""Robustness statistics over per-example records (Sun et al. 2023, sections 4.2-4.3).

Records are arranged by :mod:`heedful.analysis.grouping` (scores are fractions in [0, 1]:
0/1 accuracy, exact match or ROUGE-L; every statistic stays in that unit and tables show
percent); the paired observed-vs-unobserved test is :mod:`heedful.analysis.paired`.

Terms used throughout:

* a *phrasing* is one instruction of a task, identified by ``(kind, instruction_id)``;
  its *accuracy* is the mean score over the instances it was evaluated on;
* a *kind* groups the phrasings of one instruction kind (``observed``, ``unobserved``,
  ``designer``, ``negated``, ...) within a task.

Nothing here runs a model: every number can be recomputed from stored records.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from heedful.analysis.grouping import OVERALL, KindData, bootstrap_weights, group_records, stream_rng
from heedful.analysis.paired import observed_vs_unobserved
from heedful.errors import HeedfulError
from heedful.evaluate.records import Record
from heedful.prompts.collection import KNOWN_KINDS

if TYPE_CHECKING:
    from rich.table import Table

DEFAULT_REFERENCE = ("observed", "designer")
# Sun et al.'s order of instruction kinds (the collections' known kinds); other kinds follow alphabetically.
KIND_ORDER = KNOWN_KINDS


@dataclass(frozen=True)
class KindSummary:
    """Accuracy statistics of one instruction kind on one task (or ``overall``).

    ``mean`` is the mean of the phrasings' accuracies (each phrasing weighs the same),
    ``std`` their sample standard deviation (ddof=1; NaN with a single phrasing),
    ``min``/``max`` the worst and best phrasing. ``ci_low``/``ci_high`` bound a 95%
    percentile-bootstrap interval of ``mean`` that resamples instances.
    ``worst_case`` scores each instance by its minimum over the kind's phrasings (an
    instance counts as correct only if every phrasing gets it right, as HELM does for
    perturbations), averaged over instances. ``pdr`` is the performance drop rate
    ``1 - mean / mean(reference_kind)`` (PromptBench); None when no reference kind exists.

    For ``task == "overall"`` (and ``"overall QA"``, ``"overall BC"``, ``"overall MC"``: the
    tasks of one task type, as Sun et al.'s Table 3 groups them) each field is the
    unweighted average over the tasks that have the kind of that field's per-task value,
    except: ``n_phrasings``/``n_examples`` are totals, ``n_tasks`` counts the tasks
    averaged, the interval comes from a bootstrap stratified by task, ``pdr`` compares the
    averages over the tasks that have both the kind and its reference, and ``std`` keeps
    its one definition: the sample standard deviation over the phrasings at the level
    reported, here every (task, phrasing) accuracy of the group (as ``results.json``'s
    per-kind ``std``).
    """

    task: str
    kind: str
    n_phrasings: int
    n_examples: int
    mean: float
    std: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    worst_case: float
    pdr: float | None
    reference_kind: str | None
    n_tasks: int = 1


def _kind_sort_key(kind: str) -> tuple[int, str]:
    return (KIND_ORDER.index(kind), "") if kind in KIND_ORDER else (len(KIND_ORDER), kind)


def _resolve_reference(kinds: Iterable[str], reference: str | Sequence[str]) -> str | None:
    candidates = (reference,) if isinstance(reference, str) else tuple(reference)
    present = set(kinds)
    return next((k for k in candidates if k in present), None)


def _bootstrap_means(data: KindData, weights: np.ndarray) -> np.ndarray:
    """Kind mean under each row of instance multiplicities ``weights`` (B x n)."""
    observed = ~np.isnan(data.scores)
    filled = np.where(observed, data.scores, 0.0)
    totals = weights @ filled
    counts = weights @ observed.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_phrasing = totals / counts
    # A resample can miss every instance a sparse phrasing was scored on: skip it there.
    return np.nanmean(per_phrasing, axis=1)


def _pdr(mean: float, ref_mean: float | None) -> float | None:
    if ref_mean is None:
        return None
    return float("nan") if ref_mean == 0 else 1.0 - mean / ref_mean


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def summarize_by_kind(
    records: Iterable[Record],
    *,
    reference: str | Sequence[str] = DEFAULT_REFERENCE,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> list[KindSummary]:
    """Per task and ``overall``: accuracy statistics of every instruction kind.

    ``reference`` names the kind the drop rate is measured against; a sequence is tried
    in order per task (default: ``observed``, falling back to ``designer``).
    The bootstrap draws ``n_bootstrap`` resamples of each (task, kind)'s instances from
    a generator seeded with ``seed``, the task and the kind: the same records and seed
    give the same intervals, and adding a task leaves the others' intervals unchanged.
    Rows come sorted by task (``overall`` last) and kind (Sun et al.'s order).
    """
    if n_bootstrap < 1:
        raise HeedfulError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    records = list(records)
    grouped = group_records(records)
    summaries: list[KindSummary] = []
    # per kind: list of (task, summary, bootstrap replicates) for the overall rows
    per_kind: dict[str, list[tuple[str, KindSummary, np.ndarray, np.ndarray]]] = {}
    for task in sorted(grouped):
        kinds = grouped[task]
        ref_kind = _resolve_reference(kinds, reference)
        ref_mean = float(np.mean(kinds[ref_kind].phrasing_acc())) if ref_kind else None
        for kind in sorted(kinds, key=_kind_sort_key):
            data = kinds[kind]
            acc = data.phrasing_acc()
            mean = float(np.mean(acc))
            replicates = _bootstrap_means(
                data, bootstrap_weights(len(data.instances), n_bootstrap, stream_rng(seed, task, kind))
            )
            low, high = np.nanpercentile(replicates, [2.5, 97.5])
            summary = KindSummary(
                task=task,
                kind=kind,
                n_phrasings=len(data.phrasings),
                n_examples=len(data.instances),
                mean=mean,
                std=_std(acc),
                min=float(np.min(acc)),
                max=float(np.max(acc)),
                ci_low=float(low),
                ci_high=float(high),
                worst_case=float(np.mean(np.nanmin(data.scores, axis=1))),
                pdr=_pdr(mean, ref_mean),
                reference_kind=ref_kind,
            )
            summaries.append(summary)
            per_kind.setdefault(kind, []).append((task, summary, replicates, acc))
    task_types = {r.task: r.task_type for r in records}
    for task_type in sorted({t for t in task_types.values() if t}):
        of_type = {kind: [row for row in rows if task_types.get(row[0]) == task_type] for kind, rows in per_kind.items()}
        summaries.extend(_overall({k: v for k, v in of_type.items() if v}, reference, f"{OVERALL} {task_type}"))
    summaries.extend(_overall(per_kind, reference))
    return summaries


def _overall(
    per_kind: dict[str, list[tuple[str, KindSummary, np.ndarray, np.ndarray]]],
    reference: str | Sequence[str],
    name: str = OVERALL,
) -> list[KindSummary]:
    ref_kind = _resolve_reference(per_kind, reference)
    by_task_mean = {k: {t: s.mean for t, s, _, _ in rows} for k, rows in per_kind.items()}
    out = []
    for kind in sorted(per_kind, key=_kind_sort_key):
        rows = per_kind[kind]
        summaries = [s for _, s, _, _ in rows]

        def avg(name: str) -> float:
            return float(np.nanmean([getattr(s, name) for s in summaries]))

        # Tasks are bootstrapped independently, so averaging their replicates row-wise
        # is a bootstrap stratified by task.
        replicates = np.mean(np.stack([r for _, _, r, _ in rows]), axis=0)
        low, high = np.nanpercentile(replicates, [2.5, 97.5])
        pdr = None
        if ref_kind is not None:
            common = [t for t in by_task_mean[kind] if t in by_task_mean[ref_kind]]
            if common:
                pdr = _pdr(
                    float(np.mean([by_task_mean[kind][t] for t in common])),
                    float(np.mean([by_task_mean[ref_kind][t] for t in common])),
                )
        out.append(
            KindSummary(
                task=name,
                kind=kind,
                n_phrasings=sum(s.n_phrasings for s in summaries),
                n_examples=sum(s.n_examples for s in summaries),
                mean=avg("mean"),
                std=_std(np.concatenate([acc for _, _, _, acc in rows])),
                min=avg("min"),
                max=avg("max"),
                ci_low=float(low),
                ci_high=float(high),
                worst_case=avg("worst_case"),
                pdr=pdr,
                reference_kind=ref_kind,
                n_tasks=len(rows),
            )
        )
    return out


def _json_safe(value: Any) -> Any:
    """Dataclasses as dicts, NaN as None: strict JSON."""
    if dataclasses.is_dataclass(value):
        return {k: _json_safe(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def robustness_report(records: Sequence[Record], *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Kind summaries per task and overall (``rows``) and, when records hold both
    ``observed`` and ``unobserved`` phrasings, their paired comparison per task and
    overall (``observed_vs_unobserved``, a list of :class:`PairedComparison` as dicts).
    """
    report: dict[str, Any] = {"rows": robustness_table(records, n_bootstrap=n_bootstrap, seed=seed)}
    kinds = {r.instruction_kind for r in records}
    if {"observed", "unobserved"} <= kinds:
        report["observed_vs_unobserved"] = _json_safe(observed_vs_unobserved(records, n_bootstrap=n_bootstrap, seed=seed))
    return report


TABLE_COLUMNS = (
    "task",
    "kind",
    "n_phrasings",
    "n_examples",
    "mean",
    "std",
    "min",
    "max",
    "ci_low",
    "ci_high",
    "worst_case",
    "pdr",
)


def robustness_table(
    records: Iterable[Record],
    *,
    reference: str | Sequence[str] = DEFAULT_REFERENCE,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`summarize_by_kind` as plain rows (JSON-ready; NaN becomes None)."""
    rows = []
    for summary in summarize_by_kind(records, reference=reference, n_bootstrap=n_bootstrap, seed=seed):
        row = {}
        for name in TABLE_COLUMNS:
            value = getattr(summary, name)
            row[name] = None if isinstance(value, float) and math.isnan(value) else value
        rows.append(row)
    return rows


def render_robustness_table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Table:
    """A ``rich.table.Table`` of :func:`robustness_table` rows.

    Scores in 0..1 are shown in percent with one decimal; missing values as '-'.
    A rule separates tasks so each task's kinds read as one block.
    """
    from rich.table import Table

    table = Table(title=title, pad_edge=False, collapse_padding=True)
    headers = {
        "n_phrasings": "#phr",
        "n_examples": "#ex",
        "mean": "mean%",
        "std": "std",
        "min": "min",
        "max": "max",
        "ci_low": "95% CI",
        "worst_case": "worst",
        "pdr": "PDR",
    }
    columns = [c for c in TABLE_COLUMNS if c != "ci_high"]
    for name in columns:
        table.add_column(
            headers.get(name, name),
            justify="left" if name in ("task", "kind") else "right",
            no_wrap=name != "task",
            overflow="fold",
        )

    def pct(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{100 * value:.1f}"

    for index, row in enumerate(rows):
        cells = []
        for name in columns:
            value = row.get(name)
            if name == "ci_low":
                low, high = row.get("ci_low"), row.get("ci_high")
                cells.append("-" if low is None or high is None else f"{pct(low)}–{pct(high)}")
            elif name in ("task", "kind", "n_phrasings", "n_examples"):
                cells.append("-" if value is None else str(value))
            elif name == "pdr":
                cells.append("-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.2f}")
            else:
                cells.append(pct(value))
        last_of_task = index + 1 == len(rows) or rows[index + 1].get("task") != row.get("task")
        table.add_row(*cells, end_section=last_of_task)
    return table
