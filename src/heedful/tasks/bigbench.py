"""BIG-bench JSON tasks (``task.json``) as heedful :class:`Task` objects.

The data comes from a BIG-bench checkout or the ``bigbench`` PyPI package (installed
with ``--no-deps``). BIG-bench's own Python modules import tensorflow, so nothing here
imports them: the package folder is located with :func:`importlib.util.find_spec`
(which does not execute the package) and every file is read as data.

How BIG-bench's ``JsonTask`` (``bigbench/api/json_task.py``) is mirrored:

* A ``task.json`` with ``examples`` is one task; its sub-folders are ignored.
* A ``task.json`` without ``examples`` is a container: every sub-folder holding a
  ``task.json`` is a subtask (sorted by path), named ``<parent>:<subtask name>`` where
  the subtask name is the ``name`` field of its own ``task.json``. Each subtask becomes
  its own :class:`Task` with its own prompt settings; the parent has no examples.
* Exact duplicate examples are dropped, keeping the first (BIG-bench warns and does the
  same); the count is kept in ``metadata["duplicates_removed"]``.
* Prompt settings default to BIG-bench's (:class:`BigBenchFormat`). A non-boolean
  ``append_choices_to_input`` (``"false"`` in ``logic_grid_puzzle``) is taken by its
  Python truth value, as BIG-bench does, so the choices *are* appended.

Each instance's ``id`` is the example's index in its ``task.json`` (so ids skip dropped
duplicates); ``metadata`` holds ``base_task`` (the top-level task name, the one
instruction collections use), keywords, metrics, preferred score and the file path, never
the canary string.

Differences, on purpose: the gold option is the one with the highest score and, when
several share it, the *last* one (the convention of the instruction collections of Sun
et al. 2023); BIG-bench's generative target takes the first. Options are shuffled per
instance with a seeded RNG unless ``shuffle_options=False``; the permutation is kept in
``Instance.option_order``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import random
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.io import read_json_object
from heedful.tasks.types import BigBenchFormat, Instance, Task, TaskType

# BIG-bench Lite v1 (bigbench/bbseqio/bigbench_lite.py); used when that file is absent.
_BBL_FALLBACK: tuple[str, ...] = (
    "auto_debugging",
    "bbq_lite_json",
    "code_line_description",
    "conceptual_combinations",
    "conlang_translation",
    "emoji_movie",
    "formal_fallacies_syllogisms_negation",
    "hindu_knowledge",
    "known_unknowns",
    "language_identification",
    "linguistics_puzzles",
    "logic_grid_puzzle",
    "logical_deduction",
    "misconceptions_russian",
    "novel_concepts",
    "operators",
    "parsinlu_reading_comprehension",
    "play_dialog_same_or_different",
    "repeat_copy_logic",
    "strange_stories",
    "strategyqa",
    "symbol_interpretation",
    "vitaminc_fact_verification",
    "winowhy",
)

# The 14 BIG-bench Lite tasks evaluated by Sun et al. (2023).
BBL_SUN14: tuple[str, ...] = (
    "bbq_lite_json",
    "code_line_description",
    "conceptual_combinations",
    "hindu_knowledge",
    "known_unknowns",
    "language_identification",
    "logic_grid_puzzle",
    "logical_deduction",
    "novel_concepts",
    "play_dialog_same_or_different",
    "strange_stories",
    "strategyqa",
    "vitaminc_fact_verification",
    "winowhy",
)

SUITES: tuple[str, ...] = ("bbl", "bbl-sun14", "bbl-mc")


def _package_dir() -> Path | None:
    """The installed ``bigbench`` package folder, found without importing it."""
    try:
        spec = importlib.util.find_spec("bigbench")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def bigbench_root(root: str | Path | None = None) -> Path:
    """The ``benchmark_tasks`` folder: of ``root`` if given, else of the installed package.

    ``root`` may be a BIG-bench checkout, its ``bigbench`` package folder, or the
    ``benchmark_tasks`` folder itself.
    """
    if root is None:
        package = _package_dir()
        if package is None or not (package / "benchmark_tasks").is_dir():
            raise HeedfulError(
                "BIG-bench data not found: `pip install --no-deps bigbench` "
                "or give a BIG-bench checkout (bigbench:NAME@ROOT)"
            )
        return package / "benchmark_tasks"
    base = Path(root).expanduser()
    for candidate in (base / "bigbench" / "benchmark_tasks", base / "benchmark_tasks", base):
        if candidate.is_dir() and candidate.name == "benchmark_tasks":
            return candidate
    if base.is_dir():
        return base  # a folder of task folders under another name
    raise HeedfulError(f"{base}: BIG-bench folder not found")


def bbl_tasks(root: str | Path | None = None) -> tuple[str, ...]:
    """BIG-bench Lite v1 task names, parsed (never imported) from ``bbseqio/bigbench_lite.py``."""
    try:
        tasks_dir = bigbench_root(root)
    except HeedfulError:
        return _BBL_FALLBACK
    source = tasks_dir.parent / "bbseqio" / "bigbench_lite.py"
    if not source.is_file():
        return _BBL_FALLBACK
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return _BBL_FALLBACK
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "BIGBENCH_LITE_TASK_NAMES" for t in node.targets)
        ):
            try:
                value = ast.literal_eval(node.value)
                return tuple(value["bigbench_lite_v1"])
            except (ValueError, KeyError, TypeError):
                return _BBL_FALLBACK
    return _BBL_FALLBACK


def _format(data: dict[str, Any]) -> BigBenchFormat:
    default = BigBenchFormat()
    return BigBenchFormat(
        task_prefix=str(data.get("task_prefix", default.task_prefix)),
        example_input_prefix=data.get("example_input_prefix", default.example_input_prefix),
        example_output_prefix=data.get("example_output_prefix", default.example_output_prefix),
        choice_prefix=data.get("choice_prefix", default.choice_prefix),
        # BIG-bench tests this value with `if`, so the string "false" means True.
        append_choices_to_input=bool(data.get("append_choices_to_input", default.append_choices_to_input)),
    )


def _gold_index(scores: list[float], options: list[str], target: Any, loc: str) -> int:
    best = max(scores)
    if (len(scores) > 1 and best <= min(scores)) or (len(scores) == 1 and best == 0):
        # No score singles out an answer: fall back to the target text, as BIG-bench does.
        targets = target if isinstance(target, list) else [target]
        for text in targets:
            if text in options:
                return options.index(text)
        raise HeedfulError(f"{loc}: no correct choice in 'target_scores'")
    return max(i for i, s in enumerate(scores) if s == best)


def _instance(
    example: Any, index: int, task_name: str, path: Path, seed: int, shuffle_options: bool
) -> Instance:
    loc = f"{path}: example {index}"
    if not isinstance(example, dict):
        raise HeedfulError(f"{loc}: expected a JSON object")
    if "input" not in example:
        raise HeedfulError(f"{loc}: missing field 'input'")
    if "target" not in example and "target_scores" not in example:
        raise HeedfulError(f"{loc}: missing field 'target' or 'target_scores'")
    instance_id = str(index)
    target = example.get("target")
    options = gold = order = None
    if "target_scores" in example:
        scores_map = example["target_scores"]
        if not isinstance(scores_map, dict) or not scores_map:
            raise HeedfulError(f"{loc}: field 'target_scores' must be a non-empty object")
        file_options = [str(k) for k in scores_map]
        try:
            scores = [float(v) for v in scores_map.values()]
        except (TypeError, ValueError):
            raise HeedfulError(f"{loc}: field 'target_scores' must map options to numbers") from None
        file_gold = _gold_index(scores, file_options, target, loc)
        order = list(range(len(file_options)))
        if shuffle_options:
            # str seeds hash with SHA-512: stable across processes and PYTHONHASHSEED.
            random.Random(f"{seed}|{task_name}|{instance_id}").shuffle(order)
        options = tuple(file_options[j] for j in order)
        gold = order.index(file_gold)
    if target is None:
        references: tuple[str, ...] = (options[gold],)  # type: ignore[index]
    elif isinstance(target, list):
        references = tuple(str(t) for t in target)
    else:
        references = (str(target),)
    return Instance(
        id=instance_id,
        input=str(example["input"]),
        references=references,
        options=options,
        gold=gold,
        option_order=tuple(order) if order is not None else None,
    )


def _build_task(
    data: dict[str, Any], path: Path, name: str, base_task: str, seed: int, shuffle_options: bool
) -> Task:
    examples = data.get("examples")
    if not isinstance(examples, list) or not examples:
        raise HeedfulError(f"{path}: field 'examples' must be a non-empty list")
    seen: set[str] = set()
    instances: list[Instance] = []
    for index, example in enumerate(examples):
        key = json.dumps(example)  # BIG-bench's duplicate test
        if key in seen:
            continue
        seen.add(key)
        instances.append(_instance(example, index, name, path, seed, shuffle_options))
    is_choice = all(inst.options is not None for inst in instances)
    return Task(
        name=name,
        type=TaskType.MULTIPLE_CHOICE if is_choice else TaskType.GENERATION,
        instances=instances,
        definition=str(data.get("description", "")),
        metric="accuracy" if is_choice else "exact_match",
        source="bigbench",
        bigbench_format=_format(data),
        metadata={
            "base_task": base_task,
            "keywords": list(data.get("keywords", [])),
            "metrics": list(data.get("metrics", [])),
            "preferred_score": data.get("preferred_score"),
            "path": str(path),
            "duplicates_removed": len(examples) - len(instances),
        },
    )


def load_bigbench(
    name: str,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    shuffle_options: bool = True,
) -> list[Task]:
    """Load one BIG-bench JSON task (``task`` or ``task:subtask``) as a list of Tasks.

    A container task returns one Task per subtask; ``task:subtask`` picks one (by folder
    name or by the subtask's own ``name``). ``seed`` and ``shuffle_options`` control the
    per-instance option shuffle (recorded in ``Instance.option_order``).
    """
    parent, _, wanted = name.partition(":")
    tasks_dir = bigbench_root(root)
    folder = tasks_dir / parent
    if not parent or not folder.is_dir():
        raise HeedfulError(f"unknown BIG-bench task '{name}' (no folder {folder})")
    task_json = folder / "task.json"
    if not task_json.is_file():
        if (folder / "task.py").is_file():
            raise HeedfulError(
                f"BIG-bench task '{parent}' is programmatic (task.py); only JSON tasks are supported"
            )
        raise HeedfulError(f"{folder}: no task.json, not a BIG-bench JSON task")
    data = read_json_object(task_json)
    task_name = str(data.get("name", parent))

    if "examples" in data:
        if wanted:
            raise HeedfulError(f"BIG-bench task '{parent}' has no subtasks (asked for '{name}')")
        return [_build_task(data, task_json, parent, parent, seed, shuffle_options)]

    sub_paths = sorted(p for p in folder.glob("*/task.json"))
    if not sub_paths:
        raise HeedfulError(f"{task_json}: task has neither 'examples' nor subtasks")
    tasks = []
    for sub_path in sub_paths:
        sub_data = read_json_object(sub_path)
        sub_name = str(sub_data.get("name", sub_path.parent.name))
        if wanted and wanted not in (sub_path.parent.name, sub_name):
            continue
        tasks.append(
            _build_task(sub_data, sub_path, f"{task_name}:{sub_name}", parent, seed, shuffle_options)
        )
    if not tasks:
        choices = ", ".join(p.parent.name for p in sub_paths)
        raise HeedfulError(f"BIG-bench task '{parent}' has no subtask '{wanted}' (subtasks: {choices})")
    return tasks


def suite_names(suite: str, root: str | Path | None = None) -> tuple[str, ...]:
    """Task names of a named suite: ``bbl``, ``bbl-sun14`` or ``bbl-mc`` (filtered on load)."""
    if suite in ("bbl", "bbl-mc"):
        return bbl_tasks(root)
    if suite == "bbl-sun14":
        return BBL_SUN14
    raise HeedfulError(f"unknown BIG-bench suite '{suite}' (suites: {', '.join(SUITES)})")


def load_bigbench_suite(
    suite: str,
    *,
    root: str | Path | None = None,
    seed: int = 0,
    shuffle_options: bool = True,
) -> list[Task]:
    """Load a suite; ``bbl-mc`` keeps the BIG-bench Lite tasks whose examples have options.

    ``bbl-sun14`` evaluates ``bbq_lite_json`` as one task, its subtasks pooled, as Sun et
    al.'s InstructionEval does.
    """
    tasks = [
        task
        for name in suite_names(suite, root)
        for task in load_bigbench(name, root=root, seed=seed, shuffle_options=shuffle_options)
    ]
    if suite == "bbl-mc":
        tasks = [t for t in tasks if t.type is TaskType.MULTIPLE_CHOICE]
    if suite == "bbl-sun14":
        tasks = pool_subtasks(tasks, "bbq_lite_json")
    return tasks


def pool_subtasks(tasks: list[Task], parent: str) -> list[Task]:
    """``tasks`` with the subtasks of ``parent`` (``parent:sub``) pooled into one task named ``parent``.

    Instance ids become ``sub/id`` so they stay unique; the pooled task takes its first
    subtask's format and sits where that subtask was.
    """
    subtasks = [t for t in tasks if t.name.startswith(f"{parent}:")]
    if not subtasks:
        return tasks
    instances = [
        dataclasses.replace(inst, id=f"{t.name.split(':', 1)[1]}/{inst.id}") for t in subtasks for inst in t.instances
    ]
    pooled = dataclasses.replace(subtasks[0], name=parent, instances=instances)
    at = next(i for i, t in enumerate(tasks) if t is subtasks[0])
    rest = [t for t in tasks if not t.name.startswith(f"{parent}:")]
    return [*rest[:at], pooled, *rest[at:]]
