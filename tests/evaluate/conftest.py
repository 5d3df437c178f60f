"""Small JSONL tasks and an instruction collection for evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_tasks(path: Path, n: int = 6) -> Path:
    rows = []
    for i in range(n):
        rows.append({"task": "colors", "id": f"c{i}", "input": f"Is item {i} red or blue?", "options": ["red", "blue"], "gold": i % 2, "output": ["red", "blue"][i % 2]})
    for i in range(3):
        rows.append({"task": "echo", "id": f"e{i}", "input": f"Repeat {i}", "output": f"{i}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_collection(path: Path) -> Path:
    base = {"task": "colors", "task_type": "BC", "collection": "Test", "extract": None, "options": None,
            "choice_fields": None, "extra_fields": None, "label_map": None, "fixed_options": None,
            "answer": "text", "wrapper": None, "notes": []}
    records = [
        {**base, "id": "T/1", "kind": "observed", "template": "Question: {input}\nAnswer:"},
        {**base, "id": "T/2", "kind": "unobserved", "template": "{input} Reply with the colour.\n"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def make_inputs():
    """``make_inputs(folder, n=6)`` -> (tasks.jsonl, coll.jsonl) written in ``folder``."""
    return lambda folder, n=6: (write_tasks(folder / "tasks.jsonl", n=n), write_collection(folder / "coll.jsonl"))


@pytest.fixture
def inputs(tmp_path, make_inputs):
    return make_inputs(tmp_path)
