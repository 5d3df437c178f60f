"""Task spec strings: one line that says which tasks to load.

A spec is ``SCHEME:WHAT``; several specs are joined with ``+`` or given as a list:

* ``superni:PATH`` / ``superni:PATH@SPLITFILE`` — SuperNI task file, folder or checkout,
  optionally limited to the tasks of a split file.
* ``bigbench:NAMES`` / ``bigbench:NAMES@ROOT`` — comma-separated BIG-bench JSON tasks
  (``task`` or ``task:subtask``) and suites (``bbl``, ``bbl-sun14``, ``bbl-mc``), from the
  installed ``bigbench`` package or a checkout at ``ROOT``.
* ``mmlu:PATH`` / ``mmlu:PATH@DEVPATH`` — MMLU subject CSVs, optionally with dev rows.
* ``jsonl:PATH`` — your own tasks (docs/task-jsonl.md).
* ``hf:SOURCE[:CONFIG][@SPLIT][#CARD]`` — a Hugging Face dataset (hub id, ``save_to_disk``
  folder, Parquet/JSON/CSV file) mapped to tasks by a task card (``heedful.tasks.hub``).
* ``lmeval:NAMES`` / ``lmeval:NAMES@INCLUDE_PATH`` — comma-separated lm-evaluation-harness
  multiple-choice tasks, groups or tags, optionally with task YAMLs from ``INCLUDE_PATH``.

The last ``@`` separates the optional second path, so a path itself must not contain
``@`` when the second part is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from heedful.errors import HeedfulError
from heedful.tasks.bigbench import SUITES, load_bigbench, load_bigbench_suite
from heedful.tasks.config import DataConfig
from heedful.tasks.hub import load_hub
from heedful.tasks.jsonl import load_jsonl_tasks
from heedful.tasks.lmeval import load_lmeval
from heedful.tasks.mmlu import load_mmlu
from heedful.tasks.superni import load_superni
from heedful.tasks.types import Task, TaskType

SCHEMES: tuple[str, ...] = ("superni", "bigbench", "mmlu", "jsonl", "lmeval", "hf")
_USAGE = (
    "superni:PATH[@SPLITFILE], bigbench:NAME[,NAME...][@ROOT], mmlu:PATH[@DEVPATH], jsonl:PATH, "
    "lmeval:NAME[,NAME...][@INCLUDE_PATH], hf:SOURCE[:CONFIG][@SPLIT][#CARD]"
)


def _split_at(rest: str) -> tuple[str, str | None]:
    head, sep, tail = rest.rpartition("@")
    if not sep:
        return rest, None
    return head, tail


def _load_bigbench(rest: str, seed: int, shuffle_options: bool) -> list[Task]:
    names_part, root = _split_at(rest)
    names = [n.strip() for n in names_part.split(",") if n.strip()]
    if not names:
        raise HeedfulError(f"task spec 'bigbench:{rest}': no task name")
    tasks: list[Task] = []
    seen: set[str] = set()
    for name in names:
        if name in SUITES:
            loaded = load_bigbench_suite(name, root=root, seed=seed, shuffle_options=shuffle_options)
        else:
            loaded = load_bigbench(name, root=root, seed=seed, shuffle_options=shuffle_options)
        for task in loaded:  # a task named twice (e.g. a suite and one of its tasks) loads once
            if task.name not in seen:
                seen.add(task.name)
                tasks.append(task)
    return tasks


def _load_one(spec: str, seed: int, shuffle_options: bool) -> list[Task]:
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.strip().lower()
    if not sep or scheme not in SCHEMES:
        raise HeedfulError(f"unknown task spec '{spec}' (valid: {_USAGE})")
    rest = rest.strip()
    if not rest:
        raise HeedfulError(f"task spec '{spec}': nothing after '{scheme}:' (valid: {_USAGE})")
    if scheme == "bigbench":
        return _load_bigbench(rest, seed, shuffle_options)
    if scheme == "superni":
        path, split_file = _split_at(rest)
        return load_superni(path, split_file=split_file)
    if scheme == "mmlu":
        path, dev_path = _split_at(rest)
        return load_mmlu(path, dev_path)
    if scheme == "lmeval":
        names_part, include_path = _split_at(rest)
        names = [n.strip() for n in names_part.split(",") if n.strip()]
        if not names:
            raise HeedfulError(f"task spec '{spec}': no task name")
        return load_lmeval(names, include_path)
    if scheme == "hf":
        return load_hub(rest)

    return load_jsonl_tasks(rest)


def split_specs(spec: str | Sequence[str]) -> list[str]:
    """The single specs in ``spec`` (a ``+``-joined string or a list of them)."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    return [p.strip() for part in parts for p in part.split("+") if p.strip()]


def load_tasks(spec: str | Sequence[str], *, seed: int = 0, shuffle_options: bool = True) -> list[Task]:
    """Load every task a spec names, in order (see the module docstring for the syntax).

    ``seed`` and ``shuffle_options`` control BIG-bench's per-instance option shuffle.
    Raises :class:`HeedfulError` for an unknown scheme or task, or a task named twice.
    """
    specs = split_specs(spec)
    if not specs:
        raise HeedfulError(f"empty task spec (valid: {_USAGE})")
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for one in specs:
        for task in _load_one(one, seed, shuffle_options):
            if task.name in seen:
                raise HeedfulError(f"task '{task.name}' is loaded by both '{seen[task.name]}' and '{one}'")
            seen[task.name] = one
            tasks.append(task)
    return tasks


def load_data(data: DataConfig, *, seed: int) -> list[Task]:
    """The tasks of a config's ``data`` section, as every command that evaluates reads them."""
    tasks = load_tasks(data.tasks, seed=seed, shuffle_options=data.shuffle_options)
    return [with_label_options(task) for task in tasks] if data.label_options else tasks


def with_label_options(task: Task) -> Task:
    """``task`` with its label space as each instance's options (rank classification), where it has one.

    An instance whose reference is not a label keeps being scored by generation.
    """
    if task.type is not TaskType.CLASSIFICATION or not task.label_space:
        return task
    labels = tuple(task.label_space)
    instances = [
        dataclasses.replace(inst, options=labels, gold=labels.index(inst.references[0]))
        if inst.options is None and inst.references and inst.references[0] in labels else inst
        for inst in task.instances
    ]
    return dataclasses.replace(task, instances=instances)
