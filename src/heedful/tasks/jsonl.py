"""Users' own tasks from a JSON Lines file (format: docs/task-jsonl.md).

One JSON object per line is one instance. Lines are grouped into tasks by their
``task`` field (default: the file's stem), in order of first appearance. A task whose
instances carry ``options`` is multiple choice, any other task is generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.io import read_text
from heedful.tasks.types import SPLITS, Instance, Task, TaskType

FIELDS = frozenset(
    {"input", "output", "outputs", "options", "gold", "id", "task", "split", "definition", "category", "metric"}
)
METRICS = ("accuracy", "exact_match", "rougeL")
_TASK_FIELDS = ("definition", "category", "metric")  # task-level: must agree across lines


@dataclass
class _Draft:
    """A task being assembled line by line."""

    first_line: int
    instances: list[Instance] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    settings: dict[str, tuple[str, int]] = field(default_factory=dict)  # field -> (value, line)


def _string(record: dict[str, Any], name: str, loc: str) -> str:
    value = record[name]
    if not isinstance(value, str):
        raise HeedfulError(f"{loc}: field '{name}' must be a string")
    return value


def _string_list(record: dict[str, Any], name: str, loc: str) -> tuple[str, ...]:
    value = record[name]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise HeedfulError(f"{loc}: field '{name}' must be a non-empty list of strings")
    return tuple(value)


def _gold(record: dict[str, Any], options: tuple[str, ...], references: tuple[str, ...] | None, loc: str) -> int:
    if "gold" not in record:
        # Without an explicit gold, the single reference must name the option.
        if references and references[0] in options:
            return options.index(references[0])
        raise HeedfulError(f"{loc}: missing field 'gold' (or an 'output' that is one of the options)")
    gold = record["gold"]
    if isinstance(gold, bool) or not isinstance(gold, (int, str)):
        raise HeedfulError(f"{loc}: field 'gold' must be an option index or an option's text")
    if isinstance(gold, int):
        if not 0 <= gold < len(options):
            raise HeedfulError(f"{loc}: field 'gold' = {gold} is out of range for {len(options)} options")
        return gold
    if gold not in options:
        raise HeedfulError(f"{loc}: field 'gold' = {gold!r} is not one of the options")
    return options.index(gold)


def _instance(record: dict[str, Any], index: int, loc: str) -> Instance:
    unknown = sorted(set(record) - FIELDS)
    if unknown:
        raise HeedfulError(f"{loc}: unknown field '{unknown[0]}' (fields: {', '.join(sorted(FIELDS))})")
    if "input" not in record:
        raise HeedfulError(f"{loc}: missing field 'input'")
    text = _string(record, "input", loc)
    if "output" in record and "outputs" in record:
        raise HeedfulError(f"{loc}: give 'output' or 'outputs', not both")
    references: tuple[str, ...] | None = None
    if "output" in record:
        references = (_string(record, "output", loc),)
    elif "outputs" in record:
        references = _string_list(record, "outputs", loc)
    options = gold = None
    if "options" in record:
        options = _string_list(record, "options", loc)
        gold = _gold(record, options, references, loc)
        if references is None:
            references = (options[gold],)
    elif "gold" in record:
        raise HeedfulError(f"{loc}: field 'gold' needs 'options'")
    if references is None:
        raise HeedfulError(f"{loc}: missing field 'output'")
    split = record.get("split", "test")
    if split not in SPLITS:
        raise HeedfulError(f"{loc}: field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
    raw_id = record.get("id", str(index))
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise HeedfulError(f"{loc}: field 'id' must be a string or an integer")
    return Instance(id=str(raw_id), input=text, references=references, options=options, gold=gold, split=split)


def _parse_line(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise HeedfulError(f"{path}:{lineno}:{err.colno}: malformed JSON: {err.msg}") from None
    if not isinstance(record, dict):
        raise HeedfulError(f"{path}:{lineno}: expected a JSON object")
    return record


def _add_settings(draft: _Draft, record: dict[str, Any], name: str, loc: str, lineno: int) -> None:
    for key in _TASK_FIELDS:
        if key not in record:
            continue
        value = _string(record, key, loc)
        if key == "metric" and value not in METRICS:
            raise HeedfulError(f"{loc}: field 'metric' must be one of {', '.join(METRICS)}, got {value!r}")
        if key in draft.settings and draft.settings[key][0] != value:
            raise HeedfulError(
                f"{loc}: field '{key}' differs from line {draft.settings[key][1]} for task '{name}'"
            )
        draft.settings[key] = (value, lineno)


def _finish(name: str, draft: _Draft, path: Path) -> Task:
    with_options = [inst.options is not None for inst in draft.instances]
    if any(with_options) and not all(with_options):
        raise HeedfulError(f"{path}: task '{name}' mixes instances with and without 'options'")
    is_choice = all(with_options)
    settings = {k: v for k, (v, _) in draft.settings.items()}
    return Task(
        name=name,
        type=TaskType.MULTIPLE_CHOICE if is_choice else TaskType.GENERATION,
        instances=draft.instances,
        definition=settings.get("definition", ""),
        category=settings.get("category", ""),
        metric=settings.get("metric", "accuracy" if is_choice else "exact_match"),
        source="jsonl",
        metadata={"base_task": name, "path": str(path), "first_line": draft.first_line},
    )


def load_jsonl_tasks(path: str | Path) -> list[Task]:
    """Load tasks from a JSON Lines file: one instance per line (see docs/task-jsonl.md)."""
    path = Path(path)
    lines = read_text(path).splitlines()
    drafts: dict[str, _Draft] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        loc = f"{path}:{lineno}"
        record = _parse_line(line, path, lineno)
        name = record.get("task", path.stem)
        if not isinstance(name, str) or not name:
            raise HeedfulError(f"{loc}: field 'task' must be a non-empty string")
        draft = drafts.setdefault(name, _Draft(first_line=lineno))
        instance = _instance(record, len(draft.instances), loc)
        if instance.id in draft.ids:
            raise HeedfulError(f"{loc}: duplicate id '{instance.id}' in task '{name}'")
        draft.ids.add(instance.id)
        _add_settings(draft, record, name, loc, lineno)
        draft.instances.append(instance)
    if not drafts:
        raise HeedfulError(f"{path}: no instances (empty file)")
    return [_finish(name, draft, path) for name, draft in drafts.items()]
