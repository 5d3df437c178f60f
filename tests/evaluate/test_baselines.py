"""Random-guess and majority baselines against brute-force enumeration on real SuperNI tasks."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter

import pytest

from heedful.errors import HeedfulError
from heedful.evaluate.baselines import majority_baseline, majority_label, sampled_guess, uniform_guess_expected
from heedful.evaluate.metrics import exact_match
from heedful.tasks.superni import load_superni
from record_factory import record
from shared_data import SHARED_DATA

SUPERNI = SHARED_DATA / "superni"
TASKS = ["task1529_scitail1.1_classification", "task641_esnli_classification", "task050_multirc_answerability"]


@pytest.fixture(scope="module")
def tasks():
    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    return {
        name: load_superni(SUPERNI / "tasks" / f"{name}.json", label_space_file=SUPERNI / "label_space.json")[0]
        for name in TASKS
    }


def test_uniform_expectation_equals_enumeration_of_all_guess_vectors():
    # Enumerate every assignment of one guess per instance: 3 labels ** 5 instances.
    refs = [["Yes"], ["no"], ["maybe", "Yes."], ["No!"], ["unknown"]]
    labels = ["yes", "no", "maybe"]
    totals = []
    for guesses in itertools.product(labels, repeat=len(refs)):
        totals.append(
            statistics.fmean(max(exact_match(g, r) for r in rs) for g, rs in zip(guesses, refs))
        )
    assert uniform_guess_expected(refs, labels) == pytest.approx(statistics.fmean(totals))
    # A repeated label does not make itself more likely.
    assert uniform_guess_expected(refs, [*labels, "yes"]) == pytest.approx(statistics.fmean(totals))


@pytest.mark.parametrize("name", TASKS)
def test_uniform_expectation_on_superni_test_split(tasks, name):
    task = tasks[name]
    test = task.split("test")
    refs = [inst.references for inst in test]
    expected = statistics.fmean(
        statistics.fmean(max(exact_match(label, r) for r in inst.references) for label in task.label_space)
        for inst in test
    )
    got = uniform_guess_expected(refs, task.label_space)
    assert got == pytest.approx(expected)
    # Every test output is a label here, so the expectation is 1 / number of labels.
    if all(any(exact_match(label, r) for label in task.label_space for r in inst.references) for inst in test):
        assert got == pytest.approx(1 / len(task.label_space))


def test_sampled_guess_is_seeded_and_close_to_expectation(tasks):
    task = tasks[TASKS[0]]
    refs = [inst.references for inst in task.split("test")]
    a = sampled_guess(refs, task.label_space, seed=1, n_runs=400)
    b = sampled_guess(refs, task.label_space, seed=1, n_runs=400)
    c = sampled_guess(refs, task.label_space, seed=2, n_runs=400)
    assert a == b and a != c
    expected = uniform_guess_expected(refs, task.label_space)
    assert a.ci_low <= a.mean <= a.ci_high
    assert a.run_low < a.ci_low and a.run_high > a.ci_high
    # 400 runs of 100 binary guesses: the mean's standard error is 0.0025 (0.25 points).
    assert abs(a.mean - expected) < 0.015


def test_majority_baseline_on_superni(tasks):
    task = tasks[TASKS[0]]
    train = [r for inst in task.split("train") for r in inst.references]
    counts = Counter(train)
    top = max(task.label_space, key=lambda label: (counts[label], -task.label_space.index(label)))
    assert majority_label(train, task.label_space) == top
    test = task.split("test")
    expected = statistics.fmean(max(exact_match(top, r) for r in inst.references) for inst in test)
    assert majority_baseline([i.references for i in test], task.label_space, train) == pytest.approx(expected)


def test_majority_ties_follow_label_space_order_and_normalisation():
    assert majority_label(["B", "a", "b", "A"], ["a", "b"]) == "a"
    assert majority_label(["Yes.", "yes", "no"], ["no", "yes"]) == "yes"
    with pytest.raises(HeedfulError, match="no training output"):
        majority_label(["maybe"], ["yes", "no"])


def test_baseline_input_errors():
    with pytest.raises(HeedfulError, match="label space is empty"):
        uniform_guess_expected([["a"]], [])
    with pytest.raises(HeedfulError, match="no instances"):
        uniform_guess_expected([], ["a"])
    with pytest.raises(HeedfulError, match="instance 0: references must be a list"):
        uniform_guess_expected(["yes"], ["yes"])
    with pytest.raises(HeedfulError, match="n_runs"):
        sampled_guess([["a"]], ["a"], seed=0, n_runs=0)


# ---------------------------------------------------------------------------------------
# baseline_report: the baselines section of an evaluation's results
# ---------------------------------------------------------------------------------------


def _records(task, instances, kind_scores, *, generation=False):
    # kind -> per-instance scores (0..1), one instruction per kind; generation records
    # carry exact_match (the baseline's metric) beside a score in another metric.
    return [
        record(task=task.name, instruction_kind=kind, instruction_id=f"i-{kind}", instance_id=inst.id,
               references=inst.references, score=0.25 if generation else score,
               exact_match=score if generation else None, rouge_l=0.5 if generation else None)
        for kind, scores in kind_scores.items()
        for inst, score in zip(instances, scores)
    ]


def test_baseline_report_per_task_category_and_model_scores(tasks):
    from heedful.evaluate.baselines import baseline_report

    chosen = [tasks[TASKS[0]], tasks[TASKS[1]]]
    records = []
    for task in chosen:
        test = task.split("test")[:10]
        records += _records(task, test, {"designer": [1, 0] * 5, "none": [0] * 10}, generation=task is chosen[1])
    report = baseline_report(chosen, records, label_spaces_file=SUPERNI / "label_space.json", seed=0, n_runs=50)
    assert report["units"] == "exact match, fraction (0-1)"
    for task in chosen:
        entry = report["tasks"][task.name]
        refs = [inst.references for inst in task.split("test")[:10]]
        assert entry["n_instances"] == 10
        assert entry["uniform_expected"] == pytest.approx(uniform_guess_expected(refs, task.label_space))
        assert entry["sampled"]["mean"] == pytest.approx(sampled_guess(refs, task.label_space, seed=0, n_runs=50).mean)
        train = [r for inst in task.split("train") for r in inst.references]
        assert entry["majority_label"] == majority_label(train, task.label_space)
        assert entry["majority"] == pytest.approx(majority_baseline(refs, task.label_space, train))
        assert entry["model"] == {"designer": pytest.approx(0.5), "none": 0.0}
        assert entry["label_source"] == "file"
    # Both tasks are Textual Entailment: the category mean is the mean of the two tasks.
    category = report["categories"]["Textual Entailment"]
    assert category["n_tasks"] == 2
    assert category["uniform_expected"] == pytest.approx(
        statistics.fmean(report["tasks"][t.name]["uniform_expected"] for t in chosen)
    )
    assert report["overall"]["model"]["designer"] == pytest.approx(0.5)


def test_baseline_report_lists_open_generation_as_not_applicable():
    from heedful.evaluate.baselines import baseline_report

    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    name = "task1356_xlsum_title_generation"
    task = load_superni(SUPERNI / "tasks" / f"{name}.json")[0]
    report = baseline_report([task], [], label_spaces_file=SUPERNI / "label_space.json")
    assert report["tasks"] == {}
    assert "open generation" in report["not_applicable"][name]
    assert report["overall"]["n_tasks"] == 0 and report["overall"]["uniform_expected"] is None
