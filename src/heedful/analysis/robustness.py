"""Robustness statistics over per-example records (Sun et al. 2023, sections 4.2-4.3).

A *record* is one scored (task, instruction, instance) triple: a mapping (or object)
with at least ``task``, ``instruction_id``, ``instruction_kind``, ``instance_id`` and
``score`` (0/1 accuracy or a 0..100 metric; every statistic stays in the scores' unit).

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
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from heedful.errors import HeedfulError
from heedful.prompts.collection import KNOWN_KINDS

if TYPE_CHECKING:
    from rich.table import Table

OVERALL = "overall"
REQUIRED_FIELDS = ("task", "instruction_id", "instruction_kind", "instance_id", "score")
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

    For ``task == "overall"`` each field is the unweighted average over the tasks that
    have the kind of that field's per-task value (``std`` skips tasks where it is NaN),
    except: ``n_phrasings``/``n_examples``
    are totals, ``n_tasks`` counts the tasks averaged, the interval comes from a
    bootstrap stratified by task, and ``pdr`` compares the averages over the tasks that
    have both the kind and its reference.
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


@dataclass(frozen=True)
class PairedComparison:
    """Kind ``a`` against kind ``b`` on one task (or ``overall``), paired by instance.

    ``delta = mean_a - mean_b`` uses the kinds' means (mean of phrasing accuracies).
    The test pairs instances: ``a_i`` (``b_i``) is instance i's mean score over the
    phrasings of kind a (b), ``mean_difference`` the mean of ``a_i - b_i`` over the
    ``n_examples`` instances scored under both kinds (it equals ``delta`` when every
    phrasing covers every instance). ``p_permutation`` is the two-sided sign-flip
    permutation p-value of ``mean_difference`` (exact when 2**n_examples <=
    n_permutations); ``p_wilcoxon`` scipy's Wilcoxon signed-rank p, for reference (NaN
    when every difference is zero). ``ci_low``/``ci_high`` bound a 95% percentile-bootstrap
    interval of ``mean_difference`` that resamples the paired instances. Overall: tasks
    weigh the same in ``delta``, the test statistic and the interval; the signs of all
    tasks' instances are flipped together and the bootstrap is stratified by task.
    """

    task: str
    kind_a: str
    kind_b: str
    mean_a: float
    mean_b: float
    delta: float
    n_examples: int
    mean_difference: float
    p_permutation: float
    p_wilcoxon: float
    n_permutations: int
    exact: bool
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n_tasks: int = 1


@dataclass
class _KindData:
    """One kind on one task as a dense (instance x phrasing) matrix; NaN = not scored."""

    phrasings: list[str]
    instances: list[str]
    scores: np.ndarray

    def phrasing_acc(self) -> np.ndarray:
        return np.nanmean(self.scores, axis=0)

    def instance_mean(self) -> np.ndarray:
        return np.nanmean(self.scores, axis=1)


def _field(record: Any, name: str, index: int) -> Any:
    if isinstance(record, Mapping):
        if name not in record:
            raise HeedfulError(f"record {index}: missing field '{name}'")
        return record[name]
    try:
        return record[name]  # sqlite3.Row and other mapping-like rows
    except (TypeError, KeyError, IndexError):
        pass
    if hasattr(record, name):
        return getattr(record, name)
    raise HeedfulError(f"record {index}: missing field '{name}'")


def _group(records: Iterable[Any]) -> dict[str, dict[str, _KindData]]:
    """Validate records and arrange them as task -> kind -> score matrix."""
    cells: dict[str, dict[str, dict[tuple[str, str], float]]] = {}
    for index, record in enumerate(records):
        task, iid, kind, inst, score = (_field(record, f, index) for f in REQUIRED_FIELDS)
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise HeedfulError(f"record {index}: field 'score' is not a number: {score!r}") from None
        if not math.isfinite(value):
            raise HeedfulError(f"record {index}: field 'score' is not finite: {score!r}")
        key = (str(inst), str(iid))
        per_kind = cells.setdefault(str(task), {}).setdefault(str(kind), {})
        if key in per_kind:
            raise HeedfulError(
                f"record {index}: duplicate score for task '{task}', kind '{kind}', "
                f"instruction '{iid}', instance '{inst}'"
            )
        per_kind[key] = value
    if not cells:
        raise HeedfulError("no records to analyse")
    grouped: dict[str, dict[str, _KindData]] = {}
    for task, kinds in cells.items():
        grouped[task] = {}
        for kind, scores in kinds.items():
            phrasings = sorted({p for _, p in scores})
            instances = sorted({i for i, _ in scores})
            col = {p: j for j, p in enumerate(phrasings)}
            row = {i: j for j, i in enumerate(instances)}
            matrix = np.full((len(instances), len(phrasings)), np.nan)
            for (inst, phr), value in scores.items():
                matrix[row[inst], col[phr]] = value
            grouped[task][kind] = _KindData(phrasings, instances, matrix)
    return grouped


def _kind_sort_key(kind: str) -> tuple[int, str]:
    return (KIND_ORDER.index(kind), "") if kind in KIND_ORDER else (len(KIND_ORDER), kind)


def _resolve_reference(kinds: Iterable[str], reference: str | Sequence[str]) -> str | None:
    candidates = (reference,) if isinstance(reference, str) else tuple(reference)
    present = set(kinds)
    return next((k for k in candidates if k in present), None)


def _bootstrap_means(data: _KindData, weights: np.ndarray) -> np.ndarray:
    """Kind mean under each row of instance multiplicities ``weights`` (B x n)."""
    observed = ~np.isnan(data.scores)
    filled = np.where(observed, data.scores, 0.0)
    totals = weights @ filled
    counts = weights @ observed.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_phrasing = totals / counts
    # A resample can miss every instance a sparse phrasing was scored on: skip it there.
    return np.nanmean(per_phrasing, axis=1)


def _bootstrap_weights(n: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    draws = rng.integers(0, n, size=(n_bootstrap, n))
    weights = np.zeros((n_bootstrap, n))
    np.add.at(weights, (np.repeat(np.arange(n_bootstrap), n), draws.ravel()), 1.0)
    return weights


def _rng(seed: int, *names: str) -> np.random.Generator:
    # One stream per (seed, task, kind): adding a task never changes another's numbers.
    return np.random.default_rng([seed % 2**64, *(zlib.crc32(n.encode()) for n in names)])


def _pdr(mean: float, ref_mean: float | None) -> float | None:
    if ref_mean is None:
        return None
    return float("nan") if ref_mean == 0 else 1.0 - mean / ref_mean


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def summarize_by_kind(
    records: Iterable[Any],
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
    grouped = _group(records)
    summaries: list[KindSummary] = []
    # per kind: list of (task, summary, bootstrap replicates) for the overall rows
    per_kind: dict[str, list[tuple[str, KindSummary, np.ndarray]]] = {}
    for task in sorted(grouped):
        kinds = grouped[task]
        ref_kind = _resolve_reference(kinds, reference)
        ref_mean = float(np.mean(kinds[ref_kind].phrasing_acc())) if ref_kind else None
        for kind in sorted(kinds, key=_kind_sort_key):
            data = kinds[kind]
            acc = data.phrasing_acc()
            mean = float(np.mean(acc))
            replicates = _bootstrap_means(
                data, _bootstrap_weights(len(data.instances), n_bootstrap, _rng(seed, task, kind))
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
            per_kind.setdefault(kind, []).append((task, summary, replicates))
    summaries.extend(_overall(per_kind, grouped, reference))
    return summaries


def _overall(
    per_kind: dict[str, list[tuple[str, KindSummary, np.ndarray]]],
    grouped: dict[str, dict[str, _KindData]],
    reference: str | Sequence[str],
) -> list[KindSummary]:
    ref_kind = _resolve_reference(per_kind, reference)
    by_task_mean = {k: {t: s.mean for t, s, _ in rows} for k, rows in per_kind.items()}
    out = []
    for kind in sorted(per_kind, key=_kind_sort_key):
        rows = per_kind[kind]
        summaries = [s for _, s, _ in rows]

        def avg(name: str) -> float:
            return float(np.nanmean([getattr(s, name) for s in summaries]))

        # Tasks are bootstrapped independently, so averaging their replicates row-wise
        # is a bootstrap stratified by task.
        replicates = np.mean(np.stack([r for _, _, r in rows]), axis=0)
        low, high = np.nanpercentile(replicates, [2.5, 97.5])
        pdr = None
        if ref_kind is not None:
            common = [t for t in by_task_mean[kind] if t in by_task_mean[ref_kind]]
            if common:
                pdr = _pdr(
                    float(np.mean([by_task_mean[kind][t] for t in common])),
                    float(np.mean([by_task_mean[ref_kind][t] for t in common])),
                )
        stds = [s.std for s in summaries if not math.isnan(s.std)]
        out.append(
            KindSummary(
                task=OVERALL,
                kind=kind,
                n_phrasings=sum(s.n_phrasings for s in summaries),
                n_examples=sum(s.n_examples for s in summaries),
                mean=avg("mean"),
                std=float(np.mean(stds)) if stds else float("nan"),
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


def _sign_flip_pvalue(
    diffs: np.ndarray, weights: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[float, bool]:
    """Two-sided p of the statistic ``sum(weights * diffs)`` under random sign flips."""
    n = len(diffs)
    values = weights * diffs
    observed = abs(float(values.sum()))
    # Float sums of the same terms in another order differ in the last bits.
    tol = 1e-9 * max(1.0, float(np.abs(values).sum()))
    if n <= 20 and 2**n <= n_permutations:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        stats = np.abs(patterns @ values)
        return float(np.mean(stats >= observed - tol)), True
    hits = 0
    chunk = max(1, min(n_permutations, 4_000_000 // max(n, 1)))
    done = 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        signs = rng.integers(0, 2, size=(size, n)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ values) >= observed - tol))
        done += size
    # The observed labelling counts as one permutation (Phipson & Smyth 2010).
    return (hits + 1) / (n_permutations + 1), False


def _wilcoxon(diffs: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    if len(diffs) == 0 or np.all(diffs == 0):
        return float("nan")
    try:
        return float(wilcoxon(diffs).pvalue)
    except ValueError:
        return float("nan")


def observed_vs_unobserved(
    records: Iterable[Any],
    *,
    a: str = "observed",
    b: str = "unobserved",
    n_permutations: int = 10000,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> list[PairedComparison]:
    """Compare two instruction kinds per task and ``overall`` with a paired test.

    For every task that has both kinds: ``delta = mean(a) - mean(b)`` and a paired,
    two-sided sign-flip permutation test over the instances scored under both (see
    :class:`PairedComparison`). Tasks lacking either kind are left out; none having
    both is an error.
    """
    if n_permutations < 1:
        raise HeedfulError(f"n_permutations must be at least 1, got {n_permutations}")
    if n_bootstrap < 1:
        raise HeedfulError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    grouped = _group(records)
    results: list[PairedComparison] = []
    pooled: list[tuple[np.ndarray, float, float]] = []
    replicates: list[np.ndarray] = []  # per task: bootstrap replicates of its mean difference
    for task in sorted(grouped):
        kinds = grouped[task]
        if a not in kinds or b not in kinds:
            continue
        da, db = kinds[a], kinds[b]
        a_by_inst = dict(zip(da.instances, da.instance_mean()))
        b_by_inst = dict(zip(db.instances, db.instance_mean()))
        common = [i for i in da.instances if i in b_by_inst]
        diffs = np.array([a_by_inst[i] - b_by_inst[i] for i in common])
        mean_a, mean_b = float(np.mean(da.phrasing_acc())), float(np.mean(db.phrasing_acc()))
        low = high = float("nan")
        if len(common) == 0:
            p_perm, exact, mean_diff = float("nan"), False, float("nan")
        else:
            p_perm, exact = _sign_flip_pvalue(
                diffs, np.full(len(diffs), 1 / len(diffs)), n_permutations, _rng(seed, task, a, b)
            )
            mean_diff = float(np.mean(diffs))
            pooled.append((diffs, mean_a, mean_b))
            boot = _bootstrap_weights(len(diffs), n_bootstrap, _rng(seed, task, a, b, "ci")) @ diffs / len(diffs)
            replicates.append(boot)
            low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
        results.append(
            PairedComparison(
                task=task,
                kind_a=a,
                kind_b=b,
                mean_a=mean_a,
                mean_b=mean_b,
                delta=mean_a - mean_b,
                n_examples=len(common),
                mean_difference=mean_diff,
                p_permutation=p_perm,
                p_wilcoxon=_wilcoxon(diffs),
                n_permutations=n_permutations,
                exact=exact,
                ci_low=low,
                ci_high=high,
            )
        )
    if not results:
        found = sorted({k for kinds in grouped.values() for k in kinds})
        raise HeedfulError(f"no task has both kinds '{a}' and '{b}' (kinds found: {', '.join(found)})")
    if pooled:
        diffs = np.concatenate([d for d, _, _ in pooled])
        # Each task's instances share 1/n_task of its weight, so every task counts equally.
        weights = np.concatenate([np.full(len(d), 1 / (len(d) * len(pooled))) for d, _, _ in pooled])
        p_perm, exact = _sign_flip_pvalue(diffs, weights, n_permutations, _rng(seed, OVERALL, a, b))
        mean_a = float(np.mean([ma for _, ma, _ in pooled]))
        mean_b = float(np.mean([mb for _, _, mb in pooled]))
        results.append(
            PairedComparison(
                task=OVERALL,
                kind_a=a,
                kind_b=b,
                mean_a=mean_a,
                mean_b=mean_b,
                delta=mean_a - mean_b,
                n_examples=len(diffs),
                mean_difference=float(np.sum(weights * diffs)),
                p_permutation=p_perm,
                p_wilcoxon=_wilcoxon(diffs),
                n_permutations=n_permutations,
                exact=exact,
                # Tasks are resampled independently: the row-wise mean is stratified by task.
                ci_low=float(np.percentile(np.mean(replicates, axis=0), 2.5)),
                ci_high=float(np.percentile(np.mean(replicates, axis=0), 97.5)),
                n_tasks=len(pooled),
            )
        )
    return results


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


def robustness_report(records: Sequence[Any], *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Kind summaries per task and overall (``rows``) and, when records hold both
    ``observed`` and ``unobserved`` phrasings, their paired comparison per task and
    overall (``observed_vs_unobserved``, a list of :class:`PairedComparison` as dicts).
    """
    report: dict[str, Any] = {"rows": robustness_table(records, n_bootstrap=n_bootstrap, seed=seed)}
    kinds = {_field(r, "instruction_kind", i) for i, r in enumerate(records)}
    if {"observed", "unobserved"} <= kinds:
        report["observed_vs_unobserved"] = _json_safe(observed_vs_unobserved(records, n_bootstrap=n_bootstrap, seed=seed))
    return report


def render_paired_table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Table:
    """A ``rich.table.Table`` of :class:`PairedComparison` rows (as dicts).

    Means and Δ are in percentage points for 0..1 scores; the CI is that of the paired
    mean difference, ``p`` the sign-flip permutation p-value.
    """
    from rich.table import Table

    first = rows[0]
    table = Table(title=title or f"{first['kind_a']} vs {first['kind_b']} (paired by instance)", pad_edge=False)
    for name in ("task", first["kind_a"], first["kind_b"], "Δ", "95% CI", "p (perm.)", "p (Wilcoxon)", "#ex"):
        table.add_column(name, justify="left" if name == "task" else "right")

    def pct(value: Any) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    def signed(value: Any) -> str:
        return "-" if value is None else f"{100 * value:+.1f}"

    def p(value: Any) -> str:
        return "-" if value is None else f"{value:.3g}"

    for index, row in enumerate(rows):
        ci = "-" if row["ci_low"] is None else f"{signed(row['ci_low'])} to {signed(row['ci_high'])}"
        table.add_row(
            row["task"], pct(row["mean_a"]), pct(row["mean_b"]), signed(row["delta"]), ci,
            p(row["p_permutation"]), p(row["p_wilcoxon"]), str(row["n_examples"]),
            end_section=index + 1 < len(rows) and rows[index + 1]["task"] == OVERALL,
        )
    return table


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
    records: Iterable[Any],
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
