"""Robustness statistics checked against brute-force recomputation on synthetic records."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import statistics

import pytest
from rich.console import Console

from heedful.analysis.grouping import OVERALL
from heedful.analysis.paired import observed_vs_unobserved
from heedful.analysis.robustness import render_robustness_table, robustness_table, summarize_by_kind
from heedful.errors import HeedfulError
from heedful.evaluate.records import Record
from record_factory import record


def make_records(spec: dict, n_instances: int, seed: int) -> list[Record]:
    """spec: {task: {kind: [per-phrasing accuracy probability, ...]}} -> 0/1 records."""
    rng = random.Random(seed)
    records = []
    for task, kinds in spec.items():
        for kind, probs in kinds.items():
            for j, p in enumerate(probs):
                for i in range(n_instances):
                    records.append(
                        record(
                            task=task,
                            instruction_id=f"{kind}/{j}",
                            instruction_kind=kind,
                            instance_id=f"{task}-{i}",
                            score=1.0 if rng.random() < p else 0.0,
                        )
                    )
    return records


def brute_force(records: list[Record], task: str, kind: str) -> dict:
    """Independent recomputation of the per-task statistics with plain Python."""
    rows = [r for r in records if r.task == task and r.instruction_kind == kind]
    phrasings = sorted({r.instruction_id for r in rows})
    acc = [statistics.fmean(r.score for r in rows if r.instruction_id == p) for p in phrasings]
    instances = sorted({r.instance_id for r in rows})
    worst = statistics.fmean(
        1.0 if all(r.score == 1 for r in rows if r.instance_id == i) else 0.0 for i in instances
    )
    return {
        "n_phrasings": len(phrasings),
        "n_examples": len(instances),
        "mean": statistics.fmean(acc),
        "std": statistics.stdev(acc) if len(acc) > 1 else math.nan,
        "min": min(acc),
        "max": max(acc),
        "worst_case": worst,
    }


SPEC = {
    "task_a": {"observed": [0.8, 0.7, 0.75], "unobserved": [0.5, 0.6, 0.4, 0.55], "nonsense": [0.3]},
    "task_b": {"designer": [0.6, 0.65], "unobserved": [0.5, 0.45]},
}


@pytest.fixture(scope="module")
def records():
    return make_records(SPEC, n_instances=40, seed=1)


def by_key(summaries):
    return {(s.task, s.kind): s for s in summaries}


def test_per_task_statistics_match_brute_force(records):
    got = by_key(summarize_by_kind(records, n_bootstrap=200))
    for task, kinds in SPEC.items():
        for kind in kinds:
            expected = brute_force(records, task, kind)
            summary = got[(task, kind)]
            for name, value in expected.items():
                actual = getattr(summary, name)
                if isinstance(value, float) and math.isnan(value):
                    assert math.isnan(actual), (task, kind, name)
                else:
                    assert actual == pytest.approx(value), (task, kind, name)


def test_pdr_uses_observed_then_designer(records):
    got = by_key(summarize_by_kind(records, n_bootstrap=50))
    bf = {(t, k): brute_force(records, t, k)["mean"] for t, ks in SPEC.items() for k in ks}
    # task_a has observed instructions: it is the reference.
    assert got[("task_a", "unobserved")].reference_kind == "observed"
    assert got[("task_a", "unobserved")].pdr == pytest.approx(
        1 - bf[("task_a", "unobserved")] / bf[("task_a", "observed")]
    )
    assert got[("task_a", "observed")].pdr == pytest.approx(0.0)
    # task_b has none: the designer's prefix is the reference.
    assert got[("task_b", "unobserved")].reference_kind == "designer"
    assert got[("task_b", "unobserved")].pdr == pytest.approx(
        1 - bf[("task_b", "unobserved")] / bf[("task_b", "designer")]
    )


def test_pdr_none_without_reference_kind():
    recs = make_records({"t": {"unobserved": [0.5, 0.6]}}, 10, seed=0)
    (summary, overall) = summarize_by_kind(recs, n_bootstrap=20)
    assert summary.pdr is None and summary.reference_kind is None
    assert overall.pdr is None


def test_overall_averages_tasks(records):
    got = by_key(summarize_by_kind(records, n_bootstrap=100))
    unobs = [brute_force(records, t, "unobserved") for t in SPEC]
    overall = got[(OVERALL, "unobserved")]
    assert overall.n_tasks == 2
    assert overall.mean == pytest.approx(statistics.fmean(u["mean"] for u in unobs))
    assert overall.worst_case == pytest.approx(statistics.fmean(u["worst_case"] for u in unobs))
    assert overall.n_phrasings == sum(u["n_phrasings"] for u in unobs)
    assert overall.n_examples == sum(u["n_examples"] for u in unobs)
    # A kind present in one task only averages over that task.
    assert got[(OVERALL, "nonsense")].mean == pytest.approx(brute_force(records, "task_a", "nonsense")["mean"])
    assert got[(OVERALL, "nonsense")].n_tasks == 1
    # Overall PDR against observed uses only tasks that have both kinds (task_a).
    assert overall.reference_kind == "observed"
    assert overall.pdr == pytest.approx(
        1 - brute_force(records, "task_a", "unobserved")["mean"] / brute_force(records, "task_a", "observed")["mean"]
    )
    assert [s.task for s in summarize_by_kind(records, n_bootstrap=10)][-1] == OVERALL


def _phrasing_accuracies(records: list[Record], kind: str, tasks) -> list[float]:
    rows = [r for r in records if r.instruction_kind == kind and r.task in tasks]
    keys = sorted({(r.task, r.instruction_id) for r in rows})
    return [statistics.fmean(r.score for r in rows if (r.task, r.instruction_id) == key) for key in keys]


def test_std_is_over_the_phrasings_at_the_level_reported_and_task_types_get_their_rows(records):
    """Table 3's definition, everywhere: per task over its phrasings, overall over every (task, phrasing)."""
    typed = [dataclasses.replace(r, task_type={"task_a": "QA", "task_b": "BC"}[r.task]) for r in records]
    got = by_key(summarize_by_kind(typed, n_bootstrap=50))
    assert got[(OVERALL, "unobserved")].std == pytest.approx(statistics.stdev(_phrasing_accuracies(typed, "unobserved", SPEC)))
    assert got[(f"{OVERALL} QA", "unobserved")].std == pytest.approx(statistics.stdev(_phrasing_accuracies(typed, "unobserved", ["task_a"])))
    assert got[(f"{OVERALL} QA", "unobserved")].mean == pytest.approx(brute_force(typed, "task_a", "unobserved")["mean"])
    assert got[(f"{OVERALL} BC", "designer")].n_tasks == 1 and (f"{OVERALL} BC", "observed") not in got
    assert [s.task for s in summarize_by_kind(typed, n_bootstrap=10)][-1] == OVERALL  # the type rows come before


def test_single_phrasing_std_is_nan_and_worst_case_equals_mean(records):
    s = by_key(summarize_by_kind(records, n_bootstrap=50))[("task_a", "nonsense")]
    assert s.n_phrasings == 1 and math.isnan(s.std)
    assert s.worst_case == pytest.approx(s.mean) and s.min == s.max == s.mean


def test_worst_case_semantics():
    # Two phrasings, 4 instances: correct under both only for instance 0.
    scores = {"p1": [1, 1, 0, 0], "p2": [1, 0, 1, 0]}
    recs = [
        record(task="t", instruction_id=p, instruction_kind="unobserved", instance_id=i, score=s)
        for p, row in scores.items()
        for i, s in enumerate(row)
    ]
    (s, _) = summarize_by_kind(recs, n_bootstrap=10)
    assert s.mean == pytest.approx(0.5)
    assert s.worst_case == pytest.approx(0.25)
    # With a graded metric (ROUGE-L, a fraction) the worst case is the per-instance minimum.
    recs = [dataclasses.replace(r, score=r.score * 0.6 + 0.2) for r in recs]
    (s, _) = summarize_by_kind(recs, n_bootstrap=10)
    assert s.worst_case == pytest.approx((0.8 + 0.2 + 0.2 + 0.2) / 4)


def test_bootstrap_is_seeded_and_matches_independent_bootstrap():
    recs = make_records({"t": {"observed": [0.7, 0.6]}}, n_instances=200, seed=3)
    first = summarize_by_kind(recs, n_bootstrap=2000, seed=5)[0]
    again = summarize_by_kind(recs, n_bootstrap=2000, seed=5)[0]
    other = summarize_by_kind(recs, n_bootstrap=2000, seed=6)[0]
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    # Independent percentile bootstrap over instances with Python's own generator.
    table = {}
    for r in recs:
        table.setdefault(r.instance_id, {})[r.instruction_id] = r.score
    rows = list(table.values())
    rng = random.Random(123)
    means = []
    for _ in range(2000):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        means.append(statistics.fmean(statistics.fmean(row[p] for row in sample) for p in ("observed/0", "observed/1")))
    means.sort()
    low, high = means[int(0.025 * 2000)], means[int(0.975 * 2000) - 1]
    assert first.ci_low <= first.mean <= first.ci_high
    assert first.ci_low == pytest.approx(low, abs=0.02)
    assert first.ci_high == pytest.approx(high, abs=0.02)


def test_bootstrap_ci_degenerate_for_constant_scores():
    recs = [
        record(task="t", instruction_id=p, instruction_kind="observed", instance_id=i, score=1.0)
        for p in ("a", "b")
        for i in range(10)
    ]
    s = summarize_by_kind(recs, n_bootstrap=50)[0]
    assert s.ci_low == s.ci_high == s.mean == 1.0


def test_adding_a_task_keeps_other_intervals(records):
    base = by_key(summarize_by_kind([r for r in records if r.task == "task_a"], n_bootstrap=100))
    full = by_key(summarize_by_kind(records, n_bootstrap=100))
    assert base[("task_a", "observed")].ci_low == full[("task_a", "observed")].ci_low


def brute_sign_flip(diffs):
    """Exact two-sided sign-flip p-value by enumerating every sign pattern."""
    obs = abs(sum(diffs))
    hits = total = 0
    for signs in itertools.product((1, -1), repeat=len(diffs)):
        total += 1
        hits += abs(sum(s * d for s, d in zip(signs, diffs))) >= obs - 1e-12
    return hits / total


def test_exact_permutation_p_matches_enumeration():
    # 8 instances, one phrasing per kind: 2**8 = 256 patterns <= n_permutations -> exact.
    a = [1, 1, 1, 0, 1, 1, 0, 1]
    b = [0, 1, 0, 0, 0, 1, 1, 0]
    recs = []
    for kind, row in (("observed", a), ("unobserved", b)):
        recs += [
            record(task="t", instruction_id=kind, instruction_kind=kind, instance_id=i, score=s)
            for i, s in enumerate(row)
        ]
    result = observed_vs_unobserved(recs, n_permutations=1000)[0]
    assert result.exact
    assert result.delta == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
    assert result.p_permutation == pytest.approx(brute_sign_flip([x - y for x, y in zip(a, b)]))


def test_permutation_detects_real_difference_not_null():
    real = make_records({"t1": {"observed": [0.8] * 3, "unobserved": [0.5] * 3}}, n_instances=150, seed=11)
    null = make_records({"t1": {"observed": [0.6] * 3, "unobserved": [0.6] * 3}}, n_instances=150, seed=12)
    r = observed_vs_unobserved(real, n_permutations=2000, seed=0)[0]
    n = observed_vs_unobserved(null, n_permutations=2000, seed=0)[0]
    assert not r.exact and r.delta > 0.15
    assert r.p_permutation < 0.001 and r.p_wilcoxon < 0.001
    assert n.p_permutation > 0.05 and n.p_wilcoxon > 0.05
    # Per-instance pairing: with full coverage the mean difference equals delta.
    assert r.mean_difference == pytest.approx(r.delta)


def test_overall_comparison_weighs_tasks_equally():
    recs = make_records(
        {
            "big": {"observed": [0.7, 0.7], "unobserved": [0.6, 0.6]},
        },
        n_instances=60,
        seed=4,
    ) + make_records({"small": {"observed": [0.9], "unobserved": [0.2]}}, n_instances=10, seed=5)
    results = {r.task: r for r in observed_vs_unobserved(recs, n_permutations=500)}
    assert results[OVERALL].n_tasks == 2
    assert results[OVERALL].n_examples == 70
    assert results[OVERALL].delta == pytest.approx((results["big"].delta + results["small"].delta) / 2)
    assert results[OVERALL].mean_difference == pytest.approx(results[OVERALL].delta)


def test_missing_kind_skips_task_or_errors(records):
    results = observed_vs_unobserved(records, n_permutations=200)
    assert [r.task for r in results] == ["task_a", OVERALL]  # task_b has no observed
    with pytest.raises(HeedfulError, match="no task has both kinds 'observed' and 'closest'"):
        observed_vs_unobserved(records, b="closest")


def test_record_validation_errors():
    good = record(task="t", instruction_id="1", instruction_kind="observed", instance_id="0", score=1.0)
    with pytest.raises(HeedfulError, match="record 1: duplicate score"):
        summarize_by_kind([good, good])
    with pytest.raises(HeedfulError, match="no records"):
        summarize_by_kind([])


def test_table_rows_and_rendering(records):
    rows = robustness_table(records, n_bootstrap=50)
    assert {"task", "kind", "n_phrasings", "n_examples", "mean", "std", "min", "max", "ci_low", "ci_high",
            "worst_case", "pdr"} == set(rows[0])
    nonsense = next(r for r in rows if r["task"] == "task_a" and r["kind"] == "nonsense")
    assert nonsense["std"] is None  # NaN becomes None in JSON-ready rows
    console = Console(width=200, record=True)
    console.print(render_robustness_table(rows, title="robustness"))
    text = console.export_text()
    assert "task_a" in text and "unobserved" in text and "overall" in text
    assert f"{100 * nonsense['mean']:.1f}" in text  # shown in percent
