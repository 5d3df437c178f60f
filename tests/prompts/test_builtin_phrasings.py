"""The built-in phrasing collection renders on real BIG-bench Lite data, task by task.

Every record is rendered on at least 100 examples of its task (all of them for smaller
tasks, spread over the subtasks) through the real loader and renderer, with the loader's
default option shuffle, so a record that assumes a fixed option order, count or input
shape fails here rather than in the middle of a robustness run.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.prompts.collection import load_collection
from heedful.prompts.instruction import Instruction
from heedful.prompts.phrasings import builtin_phrasing_tasks, builtin_phrasings_path, load_builtin_phrasings
from heedful.prompts.render import render_instruction
from heedful.prompts.safe_format import safe_format
from heedful.tasks.bigbench import load_bigbench_suite
from heedful.tasks.types import Instance, Task
from shared_data import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
SHARED_INSTRUCTIONS = SHARED_DATA / "instructions"
EXAMPLES_PER_TASK = 200
MIN_PHRASINGS = 8


@pytest.fixture(scope="module")
def phrasings() -> list[Instruction]:
    return load_collection(builtin_phrasings_path())


@pytest.fixture(scope="module")
def bbl_choice_tasks() -> dict[str, list[Task]]:
    """BIG-bench Lite tasks with options, grouped by base task (subtasks together)."""
    try:
        tasks = load_bigbench_suite("bbl-mc")
    except HeedfulError as err:
        pytest.skip(f"BIG-bench data not available ({err}); `pip install --no-deps bigbench`")
    grouped: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        grouped[task.metadata["base_task"]].append(task)
    return dict(grouped)


def _sample(tasks: list[Task]) -> list[tuple[Task, Instance]]:
    """About EXAMPLES_PER_TASK instances, evenly spaced within each subtask (all if fewer)."""
    per_subtask = math.ceil(EXAMPLES_PER_TASK / len(tasks))
    out = []
    for task in tasks:
        step = max(1, len(task.instances) // per_subtask)
        out.extend((task, inst) for inst in task.instances[::step])
    return out


def test_every_bbl_choice_task_has_enough_distinct_phrasings(phrasings, bbl_choice_tasks):
    by_task: dict[str, list[Instruction]] = defaultdict(list)
    for inst in phrasings:
        by_task[inst.task].append(inst)
    assert set(by_task) == set(bbl_choice_tasks)
    for name, records in by_task.items():
        assert len(records) >= MIN_PHRASINGS, name
        templates = [r.template for r in records]
        assert len(set(templates)) == len(templates), f"{name}: repeated template"


def test_records_are_heedful_unobserved_with_unique_ids(phrasings):
    ids = [p.id for p in phrasings]
    assert len(set(ids)) == len(ids)
    for p in phrasings:
        assert re.fullmatch(rf"heedful/{re.escape(p.task)}/[1-9][0-9]*", p.id), p.id
        assert (p.kind, p.collection, p.notes) == ("unobserved", "heedful", ())
        assert p.task_type in ("QA", "BC", "MC")
        assert p.wrapper is None and p.fixed_options is None


def test_phrasings_are_not_copied_from_the_released_collections(phrasings):
    files = sorted(SHARED_INSTRUCTIONS.glob("*.jsonl")) if SHARED_INSTRUCTIONS.is_dir() else []
    if not files:
        pytest.skip(f"reference collections not found under {SHARED_INSTRUCTIONS}")
    released = {json.loads(line)["template"] for f in files for line in f.read_text("utf-8").splitlines() if line}
    copied = [p.id for p in phrasings if p.template in released]
    assert not copied


def _input_parts(instruction: Instruction, instance: Instance) -> list[str]:
    if instruction.extract is None:
        return [instance.input]
    match = re.fullmatch(instruction.extract, instance.input, flags=re.S)
    assert match is not None
    return [v for v in match.groupdict().values() if v]


def _shown_choices(instruction: Instruction, instance: Instance, choices: tuple[str, ...]) -> list[str]:
    """What the prompt must show for the model to be able to give each choice."""
    if instruction.answer == "letter" and instruction.label_map is None:
        spec = instruction.options
        assert spec is not None, f"{instruction.id}: letter answers need lettered options"
        # The option as rendered next to its letter, e.g. "(B) Shiva".
        return [
            safe_format(spec.item, {"letter": spec.letters[i], "text": text, "index": str(i + 1)}).strip()
            for i, text in enumerate(instance.options)
        ]
    return list(choices)


def test_every_record_renders_on_its_task_examples(phrasings, bbl_choice_tasks):
    by_task: dict[str, list[Instruction]] = defaultdict(list)
    for inst in phrasings:
        by_task[inst.task].append(inst)
    for name, tasks in bbl_choice_tasks.items():
        sample = _sample(tasks)
        assert len(sample) >= min(100, sum(len(t.instances) for t in tasks))
        for instruction in by_task[name]:
            for task, instance in sample:
                out = render_instruction(instruction, task, instance)
                where = f"{instruction.id} on {task.name}/{instance.id}"
                for part in _input_parts(instruction, instance):
                    assert part in out.prompt, where
                assert out.choices is not None and len(out.choices) == len(instance.options), where
                assert len(set(out.choices)) == len(out.choices), f"{where}: two options share a target"
                assert out.references == (out.choices[out.gold],), where
                if instruction.label_map is None and instruction.answer == "text":
                    assert out.choices[out.gold] == instance.gold_text, where
                for shown in _shown_choices(instruction, instance, out.choices):
                    assert shown in out.prompt, f"{where}: {shown!r} not in prompt"
                # The answer continues the prompt: it ends on a cue, not on whitespace.
                assert not out.prompt[-1].isspace(), where


def test_builtin_phrasings_ship_as_package_data():
    path = builtin_phrasings_path()
    package_dir = Path(__import__("heedful").__file__).resolve().parent
    relative = path.resolve().relative_to(package_dir).as_posix()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["heedful"]
    assert any(fnmatch(relative, pattern) for pattern in patterns), relative
    loaded = load_builtin_phrasings()
    assert [i.id for i in loaded] == [i.id for i in load_collection(path)]
    assert builtin_phrasing_tasks() == tuple(dict.fromkeys(i.task for i in loaded))
