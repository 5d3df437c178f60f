"""The SuperNI loader on the 119 real English test tasks and on broken files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.tasks.superni import EXACT_MATCH_CATEGORIES, load_superni, load_superni_task
from heedful.tasks.types import TaskType
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "superni"
TASKS = DATA / "tasks"
SMALL = "task1155_bard_analogical_reasoning_trash_or_treasure"

pytestmark = pytest.mark.skipif(not TASKS.is_dir(), reason=f"SuperNI reference data not found at {DATA}")


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(TASKS.glob("*.json"))}


@pytest.fixture(scope="module")
def tasks():
    return {t.name: t for t in load_superni(TASKS)}


def test_loads_every_task_faithfully(tasks, raw):
    assert len(tasks) == len(raw) == 119
    for name, data in raw.items():
        task = tasks[name]
        assert task.source == "superni"
        assert [i.input for i in task.instances] == [i["input"] for i in data["Instances"]]
        assert [i.references for i in task.instances] == [tuple(i["output"]) for i in data["Instances"]]
        assert [i.id for i in task.instances] == [i["id"] for i in data["Instances"]]
        # Tk-Instruct's collator reads Definition[0]; text is kept unstripped.
        assert task.definition == data["Definition"][0]
        assert task.metadata["definitions"] == data["Definition"]
        assert task.category == data["Categories"][0]
        assert [d.input for d in task.positive_examples] == [e["input"] for e in data["Positive Examples"]]
        assert [d.output for d in task.negative_examples] == [e["output"] for e in data["Negative Examples"]]
        assert task.metadata["Source"] == data["Source"]
        assert task.metadata["Domains"] == data["Domains"]
        assert task.metadata["file"].endswith(f"{name}.json")
        if "_inferred_fields" in data:
            assert task.metadata["inferred_fields"] == data["_inferred_fields"]


def test_instance_splits_follow_file_order(tasks):
    for task in tasks.values():
        n = len(task.instances)
        assert [i.split for i in task.instances] == (
            ["test"] * min(n, 100) + ["val"] * min(max(n - 100, 0), 10) + ["train"] * max(n - 110, 0)
        )
        assert task.split("test") == task.instances[: min(n, 100)]
    # a task with fewer than 100 instances is all test
    smallest = min(tasks.values(), key=lambda t: len(t.instances))
    assert smallest.split("val") == [] and smallest.split("train") == []


def test_metric_follows_tk_instruct_category_table(tasks):
    # The table in Tk-Instruct src/compute_metrics.py: six categories use exact match.
    assert EXACT_MATCH_CATEGORIES == {
        "Textual Entailment",
        "Cause Effect Classification",
        "Coreference Resolution",
        "Dialogue Act Recognition",
        "Answerability Classification",
        "Word Analogy",
    }
    metrics = {t.category: t.metric for t in tasks.values()}
    assert metrics["Textual Entailment"] == "exact_match"
    assert metrics["Title Generation"] == "rougeL"
    assert metrics["Question Rewriting"] == "rougeL"
    assert set(metrics) >= EXACT_MATCH_CATEGORIES


def test_type_inferred_from_distinct_training_outputs(tasks):
    """Without a label-space file the labels come from the train split, never from test instances."""
    for task in tasks.values():
        pool = task.split("train") or [i for i in task.instances if i.split != "test"]
        outputs = {r for i in pool for r in i.references}
        if outputs and len(outputs) <= 20:
            assert task.type is TaskType.CLASSIFICATION
            assert task.label_space == tuple(sorted(outputs))
        else:
            assert task.type is TaskType.GENERATION
            assert task.label_space is None
    assert tasks[SMALL].label_space == ("trash", "treasure")


def test_label_space_file_decides_type():
    space_file = DATA / "label_space.json"
    spaces = json.loads(space_file.read_text(encoding="utf-8"))
    small = load_superni_task(TASKS / f"{SMALL}.json", None)
    with_file = load_superni(TASKS / f"{SMALL}.json", label_space_file=space_file)[0]
    assert with_file.label_space == tuple(spaces[f"{SMALL}.json"]["demo labels"]) == ("trash", "treasure")
    assert with_file.metadata["output_description"] == spaces[f"{SMALL}.json"]["output descriptions"]
    assert "output_description" not in small.metadata
    # 15 distinct answers, but the label-space file says open generation.
    name = "task1152_bard_analogical_reasoning_causation"
    assert spaces[f"{name}.json"]["demo labels"] == ["Generate free text"]
    assert load_superni(TASKS / f"{name}.json")[0].type is TaskType.CLASSIFICATION
    free = load_superni(TASKS / f"{name}.json", label_space_file=space_file)[0]
    assert free.type is TaskType.GENERATION and free.label_space is None


def test_split_file_paths_resolve(tmp_path):
    # A checkout-shaped copy of two real tasks: root/tasks/*.json and root/splits/*.txt.
    names = ["task1155_bard_analogical_reasoning_trash_or_treasure", "task1152_bard_analogical_reasoning_causation"]
    (tmp_path / "tasks").mkdir()
    (tmp_path / "splits").mkdir()
    for name in names:
        shutil.copy(TASKS / f"{name}.json", tmp_path / "tasks")
    (tmp_path / "splits" / "test_tasks.txt").write_text("\n".join(names) + "\n")
    assert [t.name for t in load_superni(tmp_path, "splits/test_tasks.txt")] == names
    assert [t.name for t in load_superni(tmp_path / "tasks", "splits/test_tasks.txt")] == names
    assert [t.name for t in load_superni(tmp_path / "tasks", tmp_path / "splits" / "test_tasks.txt")] == names
    assert [t.name for t in load_superni(tmp_path)] == sorted(names)
    # the shipped split file names exactly the shipped tasks
    listed = (DATA / "splits" / "test_tasks.txt").read_text().split()
    assert sorted(listed) == sorted(p.stem for p in TASKS.glob("*.json"))


def test_tolerates_missing_optional_fields(tmp_path):
    minimal = {"Definition": "Say hi", "Instances": [{"input": "x", "output": ["hi"]}]}
    (tmp_path / "task9_min.json").write_text(json.dumps(minimal))
    (task,) = load_superni(tmp_path)
    assert task.name == "task9_min" and task.definition == "Say hi"
    assert task.category == "" and task.metric == "rougeL"
    assert task.positive_examples == () and task.negative_examples == ()
    assert task.instances[0].id == "task9_min-0" and task.instances[0].split == "test"


def _write(tmp_path: Path, text: str, name: str = "task1_bad.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "Definition": ["x"],\n  "Instances": [,]\n}', "task1_bad.json:3:17: invalid JSON"),
        ('{"Instances": [{"input": "a", "output": ["b"]}]}', "task1_bad.json: field 'Definition' is missing"),
        ('{"Definition": ["x"]}', "task1_bad.json: field 'Instances' is missing"),
        ('{"Definition": ["x"], "Instances": []}', "task1_bad.json: field 'Instances' is empty"),
        (
            '{"Definition": ["x"], "Instances": [{"input": "a", "output": ["b"]}, {"output": ["b"]}]}',
            "task1_bad.json: field 'Instances[1].input' is missing",
        ),
        (
            '{"Definition": ["x"], "Instances": [{"input": "a"}]}',
            "task1_bad.json: field 'Instances[0].output' is missing",
        ),
        (
            '{"Definition": ["x"], "Instances": [{"input": "a", "output": ["b"]}], '
            '"Positive Examples": [{"input": "a"}]}',
            "task1_bad.json: field 'Positive Examples[0].output' is missing",
        ),
    ],
)
def test_bad_task_files(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(HeedfulError) as err:
        load_superni(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_paths(tmp_path):
    with pytest.raises(HeedfulError, match="no such file or directory"):
        load_superni(tmp_path / "nope")
    with pytest.raises(HeedfulError, match="no task JSON files"):
        load_superni(tmp_path)
    shutil.copy(TASKS / f"{SMALL}.json", tmp_path)
    with pytest.raises(HeedfulError, match="split file not found"):
        load_superni(tmp_path, "missing.txt")
    split = tmp_path / "split.txt"
    split.write_text(f"{SMALL}\n\ntask999_absent\n")
    with pytest.raises(HeedfulError, match=r"split.txt:3: task 'task999_absent' not found"):
        load_superni(tmp_path, split)
