"""The audit's measures on planted records: spread, worst case, PDR, paired reliance, and a verdict that follows them."""

from __future__ import annotations

import pytest

from heedful.analysis.audit import reliance, sensitivity, verdict
from record_factory import record

N = 40


def _prompt(task: str, kind: str, iid: str, correct: set[int]) -> list:
    return [record(task=task, instruction_kind=kind, instruction_id=iid, instance_id=i, score=float(i in correct))
            for i in range(N)]


def _records(shift: int = 0) -> list:
    """Per task: designer right on 30 of 40; phrasing p1 on 20 (a subset), p2 on 10 disjoint from p1's misses."""
    out = []
    for task in ("a", "b"):
        out += _prompt(task, "designer", "designer", set(range(30)))
        out += _prompt(task, "unobserved", "p1", set(range(20)))
        out += _prompt(task, "unobserved", "p2", set(range(20 + shift, 30 + shift)))
    return out


def test_spread_worst_case_and_pdr_follow_the_planted_accuracies():
    s = sensitivity(_records(), ["designer", "unobserved"], n_bootstrap=200, seed=0)
    assert s.n_prompts == 3 and s.n_tasks == 2 and s.n_instances == 2 * N
    assert s.mean.value == pytest.approx((30 + 20 + 10) / 3 / N)
    assert s.best.value == pytest.approx(30 / N) and s.worst.value == pytest.approx(10 / N)
    assert s.spread.value == pytest.approx(20 / N)
    assert s.spread.low < s.spread.value < s.spread.high
    # HELM's worst case: an instance counts only if every phrasing gets it right (none here: p1 and p2 are disjoint)
    assert s.worst_case.value == 0.0
    assert s.pdr.value == pytest.approx(1 - (15 / N) / (30 / N))
    assert [(p["task"], p["prompt"]) for p in s.per_prompt] == [
        (t, p) for t in ("a", "b") for p in ("designer:designer", "unobserved:p1", "unobserved:p2")]
    # far beyond what three interchangeable prompts would spread
    assert s.spread_p < 0.01 and 0 < s.null_spread < s.spread.value
    assert s.excess_spread.value == pytest.approx(s.spread.value - s.null_spread)


def test_interchangeable_prompts_spread_no_more_than_chance():
    rng = __import__("numpy").random.default_rng(0)
    records = [record(task="a", instruction_kind="format", instruction_id=f"f{k}", instance_id=i,
                      score=float(rng.random() < 0.5)) for k in range(6) for i in range(N)]
    s = sensitivity(records, ["format"], reference=None, n_bootstrap=300, seed=0)
    assert s.spread.value > 0  # best - worst is never negative...
    assert s.spread_p > 0.05 and s.excess_spread.low < 0 < s.excess_spread.high  # ...but it is chance here


def test_pdr_ignores_a_task_without_the_reference():
    records = _records() + _prompt("c", "unobserved", "p1", set(range(5))) + _prompt("c", "unobserved", "p2", set())
    s = sensitivity(records, ["designer", "unobserved"], n_bootstrap=100, seed=0)
    assert s.n_tasks == 3 and s.pdr.value == pytest.approx(0.5)  # tasks a and b, not NaN


def test_sensitivity_needs_two_prompts():
    only = [r for r in _records() if r.instruction_kind == "designer"]
    assert sensitivity(only, ["designer"], n_bootstrap=10) is None
    assert sensitivity(_records(), ["format"], n_bootstrap=10) is None


def test_reliance_is_a_paired_test_of_the_designer_against_each_alteration():
    records = []
    for task in ("a", "b"):
        records += _prompt(task, "designer", "designer", set(range(30)))
        records += _prompt(task, "none", "none", set(range(10)))  # loses 20 of 40
        records += _prompt(task, "nonsense", "nonsense", set(range(30)))  # identical
    rows = {r["kind"]: r for r in reliance(records, n_bootstrap=200, seed=0)}
    assert set(rows) == {"none", "nonsense"}
    assert rows["none"]["mean_difference"] == pytest.approx(0.5)
    assert rows["none"]["ci_low"] > 0 and rows["none"]["p_permutation"] < 0.01
    assert rows["nonsense"]["mean_difference"] == 0.0 and rows["nonsense"]["p_permutation"] == 1.0


def test_the_verdict_says_what_the_numbers_say():
    phrasing = sensitivity(_records(), ["designer", "unobserved"], n_bootstrap=200, seed=0)
    records = []
    for task in ("a", "b"):
        records += _prompt(task, "designer", "designer", set(range(30)))
        records += _prompt(task, "none", "none", set(range(10)))
        records += _prompt(task, "nonsense", "nonsense", set(range(30)))
        records += [record(task=task, instruction_kind="format", instruction_id=f"f{k}", instance_id=i,
                           score=float(i < 30 - k)) for k in range(3) for i in range(N)]
    fmt = sensitivity(records, ["format"], reference=None, n_bootstrap=200, seed=0)
    lines = verdict(phrasing, fmt, reliance(records, n_bootstrap=200, seed=0), {"chance": 0.5}, 0.75)
    text = "\n".join(lines)
    assert "scores 75.0%, 25.0 points above a random guess" in text
    assert "Wording moves accuracy more than format does" in text  # 50 points vs 5
    assert "Removing the instruction changes accuracy by -50.0 points" in text
    assert "the model uses what this part of the instruction says" in text
    assert "Replacing it with nonsense changes accuracy by +0.0 points" in text and "barely reads it" in text
    assert all("[figure" in line for line in lines)  # every sentence names what it rests on
