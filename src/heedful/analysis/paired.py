"""Two instruction kinds compared on the same instances: Δ, a paired permutation test, a CI.

Sun et al. 2023's central comparison (observed vs unobserved phrasings, Table 3), with
tasks weighing the same overall. Nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from heedful.analysis.grouping import OVERALL, KindData, bootstrap_weights, group_records, stream_rng
from heedful.errors import HeedfulError
from heedful.evaluate.records import Record

if TYPE_CHECKING:
    from rich.table import Table


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
    records: Iterable[Record],
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
    grouped = group_records(records)
    per_task = [
        _paired_task(task, grouped[task][a], grouped[task][b], a, b, n_permutations, n_bootstrap, seed)
        for task in sorted(grouped)
        if a in grouped[task] and b in grouped[task]
    ]
    if not per_task:
        found = sorted({k for kinds in grouped.values() for k in kinds})
        raise HeedfulError(f"no task has both kinds '{a}' and '{b}' (kinds found: {', '.join(found)})")
    results = [row for row, _, _ in per_task]
    scored = [(diffs, boot, row) for row, diffs, boot in per_task if len(diffs)]
    if scored:
        results.append(_paired_overall(scored, a, b, n_permutations, seed))
    return results


def _paired_task(
    task: str, da: KindData, db: KindData, a: str, b: str, n_permutations: int, n_bootstrap: int, seed: int
) -> tuple[PairedComparison, np.ndarray, np.ndarray]:
    """One task's comparison, its paired differences and the bootstrap replicates of their mean."""
    b_by_inst = dict(zip(db.instances, db.instance_mean()))
    a_by_inst = dict(zip(da.instances, da.instance_mean()))
    common = [i for i in da.instances if i in b_by_inst]
    diffs = np.array([a_by_inst[i] - b_by_inst[i] for i in common])
    mean_a, mean_b = float(np.mean(da.phrasing_acc())), float(np.mean(db.phrasing_acc()))
    p_perm, exact, mean_diff, low, high = float("nan"), False, float("nan"), float("nan"), float("nan")
    boot = np.zeros(0)
    if len(common):
        weights = np.full(len(diffs), 1 / len(diffs))
        p_perm, exact = _sign_flip_pvalue(diffs, weights, n_permutations, stream_rng(seed, task, a, b))
        mean_diff = float(np.mean(diffs))
        boot = bootstrap_weights(len(diffs), n_bootstrap, stream_rng(seed, task, a, b, "ci")) @ diffs / len(diffs)
        low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    row = PairedComparison(
        task=task, kind_a=a, kind_b=b, mean_a=mean_a, mean_b=mean_b, delta=mean_a - mean_b,
        n_examples=len(common), mean_difference=mean_diff, p_permutation=p_perm, p_wilcoxon=_wilcoxon(diffs),
        n_permutations=n_permutations, exact=exact, ci_low=low, ci_high=high,
    )
    return row, diffs, boot


def _paired_overall(
    scored: list[tuple[np.ndarray, np.ndarray, PairedComparison]], a: str, b: str, n_permutations: int, seed: int
) -> PairedComparison:
    """Every task weighs the same: in the means, the test statistic and the (task-stratified) interval."""
    diffs = np.concatenate([d for d, _, _ in scored])
    # Each task's instances share 1/n_task of its weight, so every task counts equally.
    weights = np.concatenate([np.full(len(d), 1 / (len(d) * len(scored))) for d, _, _ in scored])
    p_perm, exact = _sign_flip_pvalue(diffs, weights, n_permutations, stream_rng(seed, OVERALL, a, b))
    mean_a = float(np.mean([row.mean_a for _, _, row in scored]))
    mean_b = float(np.mean([row.mean_b for _, _, row in scored]))
    # Tasks are resampled independently: the row-wise mean of their replicates is stratified by task.
    replicates = np.mean([boot for _, boot, _ in scored], axis=0)
    return PairedComparison(
        task=OVERALL, kind_a=a, kind_b=b, mean_a=mean_a, mean_b=mean_b, delta=mean_a - mean_b,
        n_examples=len(diffs), mean_difference=float(np.sum(weights * diffs)), p_permutation=p_perm,
        p_wilcoxon=_wilcoxon(diffs), n_permutations=n_permutations, exact=exact,
        ci_low=float(np.percentile(replicates, 2.5)), ci_high=float(np.percentile(replicates, 97.5)),
        n_tasks=len(scored),
    )


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
