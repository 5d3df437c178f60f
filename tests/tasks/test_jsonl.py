"""The JSONL task loader: the documented format and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.tasks.jsonl import load_jsonl_tasks
from heedful.tasks.types import TaskType


def write(tmp_path: Path, *records: object, name: str = "mine.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_generation_task_named_after_file(tmp_path):
    path = write(
        tmp_path,
        {"input": "2+2", "output": "4", "definition": "Add.", "category": "Arithmetic"},
        "",
        {"input": "3+3", "outputs": ["6", "six"], "id": "q2", "split": "train"},
    )
    (task,) = load_jsonl_tasks(path)
    assert task.name == "mine" and task.type is TaskType.GENERATION and task.metric == "exact_match"
    assert task.definition == "Add." and task.category == "Arithmetic" and task.source == "jsonl"
    first, second = task.instances
    assert (first.id, first.references, first.options, first.split) == ("0", ("4",), None, "test")
    assert (second.id, second.references, second.split) == ("q2", ("6", "six"), "train")


def test_choice_tasks_and_several_tasks_per_file(tmp_path):
    path = write(
        tmp_path,
        {"task": "colors", "input": "Sky?", "options": ["red", "blue"], "gold": 1},
        {"task": "sizes", "input": "Big?", "options": ["small", "large"], "gold": "large"},
        {"task": "colors", "input": "Grass?", "options": ["green", "pink"], "output": "green"},
        {"task": "colors", "input": "Snow?", "options": ["white", "black"], "gold": 0, "output": "White"},
    )
    colors, sizes = load_jsonl_tasks(path)
    assert [colors.name, sizes.name] == ["colors", "sizes"]
    assert colors.type is TaskType.MULTIPLE_CHOICE and colors.metric == "accuracy"
    assert [i.gold_text for i in colors.instances] == ["blue", "green", "white"]
    assert [i.references for i in colors.instances] == [("blue",), ("green",), ("White",)]
    assert sizes.instances[0].gold == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": "x", "output": "y",}', r"mine.jsonl:2:\d+: malformed JSON"),
        ('["input"]', r"mine.jsonl:2: expected a JSON object"),
        ('{"output": "y"}', r"mine.jsonl:2: missing field 'input'"),
        ('{"input": "x"}', r"mine.jsonl:2: missing field 'output'"),
        ('{"input": "x", "ouput": "y"}', r"mine.jsonl:2: unknown field 'ouput'"),
        ('{"input": 3, "output": "y"}', r"mine.jsonl:2: field 'input' must be a string"),
        ('{"input": "x", "outputs": []}', r"mine.jsonl:2: field 'outputs' must be a non-empty list"),
        ('{"input": "x", "options": ["a", "b"], "gold": "c"}', r"mine.jsonl:2: field 'gold' = 'c' is not one of the options"),
        ('{"input": "x", "options": ["a", "b"], "gold": 2}', r"mine.jsonl:2: field 'gold' = 2 is out of range"),
        ('{"input": "x", "options": ["a", "b"]}', r"mine.jsonl:2: missing field 'gold'"),
        ('{"input": "x", "output": "y", "gold": 0}', r"mine.jsonl:2: field 'gold' needs 'options'"),
        ('{"input": "x", "output": "y", "split": "dev"}', r"mine.jsonl:2: field 'split' must be one of"),
        ('{"input": "x", "output": "y", "id": "0"}', r"mine.jsonl:2: duplicate id '0'"),
        ('{"input": "x", "output": "y", "definition": "Other."}', r"mine.jsonl:2: field 'definition' differs from line 1"),
        ('{"input": "x", "output": "y", "metric": "bleu"}', r"mine.jsonl:2: field 'metric' must be one of"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, line, message):
    path = write(tmp_path, {"input": "a", "output": "b", "definition": "Def."}, line)
    with pytest.raises(HeedfulError, match=message):
        load_jsonl_tasks(path)


def test_mixed_options_and_empty_file(tmp_path):
    path = write(tmp_path, {"input": "a", "output": "b"}, {"input": "c", "options": ["d", "e"], "gold": 0})
    with pytest.raises(HeedfulError, match="mixes instances with and without 'options'"):
        load_jsonl_tasks(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(HeedfulError, match=r"empty.jsonl: no instances \(empty file\)"):
        load_jsonl_tasks(empty)
    with pytest.raises(HeedfulError, match="no such file"):
        load_jsonl_tasks(tmp_path / "missing.jsonl")


def test_documented_example_loads(tmp_path):
    """The example in docs/task-jsonl.md loads as described there."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "task-jsonl.md"
    text = doc.read_text(encoding="utf-8")
    block = text.split("```jsonl\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_tasks.jsonl"
    path.write_text(block, encoding="utf-8")
    tasks = {t.name: t for t in load_jsonl_tasks(path)}
    assert tasks["capitals"].type is TaskType.GENERATION
    assert tasks["sentiment"].type is TaskType.MULTIPLE_CHOICE
    assert tasks["sentiment"].instances[0].gold_text == "positive"
