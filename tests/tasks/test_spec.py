"""Task spec strings, resolved to the loaders on real data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.tasks.bigbench import BBL_SUN14, bigbench_root, load_bigbench
from heedful.tasks.config import DataConfig
from heedful.tasks.mmlu import load_mmlu
from heedful.tasks.spec import load_data, load_tasks, split_specs, with_label_options
from heedful.tasks.types import TaskType
from shared_data import SHARED_DATA

DATA = SHARED_DATA
MMLU = DATA / "mmlu" / "test"
SUPERNI = DATA / "superni"

try:
    BB_ROOT: Path | None = bigbench_root()
except HeedfulError:
    BB_ROOT = None

needs_bigbench = pytest.mark.skipif(BB_ROOT is None, reason="bigbench package not installed")
needs_mmlu = pytest.mark.skipif(not MMLU.is_dir(), reason=f"MMLU reference data not found at {MMLU}")
needs_superni = pytest.mark.skipif(not (SUPERNI / "tasks").is_dir(), reason=f"SuperNI data not found at {SUPERNI}")


def test_split_specs():
    assert split_specs("a:x + b:y") == ["a:x", "b:y"]
    assert split_specs(["a:x+b:y", "c:z"]) == ["a:x", "b:y", "c:z"]


@needs_bigbench
def test_bigbench_names_and_seed():
    tasks = load_tasks("bigbench:winowhy, strategyqa", seed=4)
    assert [t.name for t in tasks] == ["winowhy", "strategyqa"]
    (direct,) = load_bigbench("winowhy", seed=4)
    assert [i.options for i in tasks[0].instances] == [i.options for i in direct.instances]
    (plain,) = load_tasks("bigbench:winowhy", shuffle_options=False)
    assert all(i.option_order == tuple(range(len(i.options))) for i in plain.instances)


@needs_bigbench
def test_bigbench_suite_and_subtask_and_root(tmp_path):
    sun = load_tasks("bigbench:bbl-sun14,winowhy")
    assert {t.metadata["base_task"] for t in sun} == set(BBL_SUN14)
    assert [t.name for t in sun].count("winowhy") == 1
    (sub,) = load_tasks("bigbench:logical_deduction:three_objects")
    assert sub.name == "logical_deduction:three_objects"
    with pytest.raises(HeedfulError, match="unknown BIG-bench task 'hindu_knowledge'"):
        load_tasks(f"bigbench:hindu_knowledge@{tmp_path}")


@needs_mmlu
def test_mmlu_and_combination(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "anatomy_dev.csv").write_text("q,a,b,c,d,A\n")
    tasks = load_tasks(f"mmlu:{MMLU}@{dev}")
    assert [t.name for t in tasks] == [t.name for t in load_mmlu(MMLU)]
    anatomy = next(t for t in tasks if t.name == "mmlu_anatomy")
    assert len(anatomy.split("train")) == 1
    jsonl = tmp_path / "own.jsonl"
    jsonl.write_text(json.dumps({"input": "x", "output": "y"}) + "\n")
    combined = load_tasks(f"mmlu:{MMLU / 'anatomy_test.csv'} + jsonl:{jsonl}")
    assert [t.name for t in combined] == ["mmlu_anatomy", "own"]


@needs_superni
def test_superni_with_split_file(tmp_path):
    split = tmp_path / "two.txt"
    names = (SUPERNI / "splits" / "test_tasks.txt").read_text().split()[:2]
    split.write_text("\n".join(names) + "\n")
    tasks = load_tasks(f"superni:{SUPERNI / 'tasks'}@{split}")
    assert [t.name for t in tasks] == names
    assert all(t.source == "superni" for t in tasks)


def test_errors(tmp_path):
    with pytest.raises(HeedfulError, match=r"unknown task spec 'glue:sst2'.*superni:PATH.*jsonl:PATH"):
        load_tasks("glue:sst2")
    with pytest.raises(HeedfulError, match="unknown task spec 'winowhy'"):
        load_tasks("winowhy")
    with pytest.raises(HeedfulError, match="nothing after 'jsonl:'"):
        load_tasks("jsonl:")
    with pytest.raises(HeedfulError, match="empty task spec"):
        load_tasks(" + ")
    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"input": "x", "output": "y"}) + "\n")
    with pytest.raises(HeedfulError, match="task 'own' is loaded by both"):
        load_tasks([f"jsonl:{own}", f"jsonl:{own}"])


@needs_superni
def test_label_options_turn_a_classification_task_into_rank_classification_over_its_labels():
    """Kung & Peng 2023 score SuperNI classification by rank classification over the label space."""
    spec = f"superni:{SUPERNI / 'tasks' / 'task1155_bard_analogical_reasoning_trash_or_treasure.json'}"
    [plain] = load_data(DataConfig(tasks=spec), seed=0)
    [task] = load_data(DataConfig(tasks=spec, label_options=True), seed=0)
    assert plain.type is TaskType.CLASSIFICATION and plain.label_space == ("trash", "treasure")
    assert all(i.options is None for i in plain.instances)
    for before, after in zip(plain.instances, task.instances, strict=True):
        assert after.options == ("trash", "treasure") and after.options[after.gold] == before.references[0]
    odd = dataclasses.replace(plain, instances=[dataclasses.replace(plain.instances[0], references=("neither",))])
    assert with_label_options(odd).instances[0].options is None  # not a label: still scored by generation
