"""Load Super-NaturalInstructions (SuperNI) task files into :class:`Task` objects.

The task format is the one of allenai/natural-instructions (``tasks/<name>.json``).
Instances are split the way SuperNI and Tk-Instruct evaluate them: the first 100 in file
order are the official test instances (``ni_dataset.py`` takes ``Instances[:100]``), the
next 10 are validation and the rest training (the split of Gupta 2023's ``data_prep.py``).

Text fields are kept exactly as written in the file (no stripping): the prompt encodings
strip or not as their reference implementations do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError, where
from heedful.io import read_text
from heedful.tasks.types import Demonstration, Instance, Task, TaskType

# Categories that Tk-Instruct's ``src/compute_metrics.py`` reports with exact match;
# every other SuperNI test category is reported with ROUGE-L.
EXACT_MATCH_CATEGORIES: frozenset[str] = frozenset(
    {
        "Textual Entailment",
        "Cause Effect Classification",
        "Coreference Resolution",
        "Dialogue Act Recognition",
        "Answerability Classification",
        "Word Analogy",
    }
)

# A task whose outputs take at most this many distinct values is treated as classification
# when no label-space file says otherwise.
MAX_CLASSIFICATION_LABELS = 20

TEST_SIZE = 100
VAL_SIZE = 10

# The label-space file's marker for open generation.
FREE_TEXT_LABEL = "Generate free text"

_HEADER_FIELDS = (
    "Contributors",
    "Source",
    "URL",
    "Reasoning",
    "Domains",
    "Input_language",
    "Output_language",
    "Instruction_language",
)


def metric_for_category(category: str) -> str:
    """SuperNI's metric for a task category: ``exact_match`` or ``rougeL``."""
    return "exact_match" if category in EXACT_MATCH_CATEGORIES else "rougeL"


def split_for_index(index: int, test: int = TEST_SIZE, val: int = VAL_SIZE) -> str:
    """The split (``test``, ``val``, ``train``) of the instance at ``index`` in file order: the first
    ``test`` instances are test, the next ``val`` val (SuperNI's 100 and 10 by default)."""
    if index < test:
        return "test"
    if index < test + val:
        return "val"
    return "train"


def load_superni(
    path: str | Path,
    split_file: str | Path | None = None,
    label_space_file: str | Path | None = None,
) -> list[Task]:
    """Load SuperNI tasks from a task file, a directory of task files or a checkout.

    ``path`` is one ``<task>.json`` file, a directory of them, or a SuperNI checkout root
    (a directory containing ``tasks/``). ``split_file`` lists task names one per line
    (e.g. ``splits/default/test_tasks.txt``); a relative split file that does not exist
    as given is looked up under ``path`` and next to the tasks directory. Tasks come back
    in split-file order, or sorted by file name without a split file.

    ``label_space_file`` is a JSON file mapping task file names to ``{"demo labels": [...],
    "output descriptions": "..."}`` (Yin et al. 2023's release); its labels decide the task
    type. Without it, a task with at most 20 distinct outputs is classification.
    """
    root = Path(path)
    if not root.exists():
        raise HeedfulError(f"{root}: no such file or directory")
    label_spaces = load_label_spaces(label_space_file) if label_space_file is not None else None

    if root.is_file():
        if split_file is not None:
            raise HeedfulError(f"{root}: a split file needs a directory of tasks, not one task file")
        return [load_superni_task(root, label_spaces)]

    task_dir = root / "tasks" if (root / "tasks").is_dir() else root
    if split_file is None:
        files = sorted(p for p in task_dir.glob("*.json") if p.is_file())
        if not files:
            raise HeedfulError(f"{task_dir}: no task JSON files")
    else:
        files = _files_from_split(_resolve_split_file(split_file, root, task_dir), task_dir)
    return [load_superni_task(file, label_spaces) for file in files]


def _resolve_split_file(split_file: str | Path, root: Path, task_dir: Path) -> Path:
    given = Path(split_file)
    candidates = [given]
    if not given.is_absolute():
        candidates += [root / given, task_dir.parent / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise HeedfulError(f"{given}: split file not found (also looked under {root})")


def _files_from_split(split_path: Path, task_dir: Path) -> list[Path]:
    files = []
    for line_no, line in enumerate(split_path.read_text(encoding="utf-8").splitlines(), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        file = task_dir / (name if name.endswith(".json") else f"{name}.json")
        if not file.is_file():
            raise HeedfulError(f"{where(split_path, line_no)}: task '{name}' not found in {task_dir}")
        files.append(file)
    if not files:
        raise HeedfulError(f"{split_path}: the split file lists no tasks")
    return files


def load_label_spaces(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a label-space file, keyed by task name (file name without ``.json``)."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise HeedfulError(f"{path}: expected a JSON object mapping task files to label spaces")
    spaces: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        labels = entry.get("demo labels") if isinstance(entry, dict) else None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise HeedfulError(f"{where(path, field=f'{key}.demo labels')} must be a list of strings")
        spaces[key.removesuffix(".json")] = entry
    return spaces


def load_superni_task(file: str | Path, label_spaces: dict[str, dict[str, Any]] | None = None) -> Task:
    """Load one SuperNI task file; ``label_spaces`` comes from :func:`load_label_spaces`."""
    file = Path(file)
    data = _read_json(file)
    if not isinstance(data, dict):
        raise HeedfulError(f"{file}: expected a JSON object (a SuperNI task)")
    name = file.stem

    definitions = _definitions(data, file)
    instances = _instances(data, file, name)
    categories = _string_list(data.get("Categories"), file, "Categories")
    category = categories[0] if categories else ""

    metadata: dict[str, Any] = {"file": str(file), "definitions": definitions, "Categories": categories}
    for key in _HEADER_FIELDS:
        if key in data:
            metadata[key] = data[key]
    if "_inferred_fields" in data:
        metadata["inferred_fields"] = data["_inferred_fields"]

    task_type, label_space = _type_and_labels(instances, (label_spaces or {}).get(name))
    description = ((label_spaces or {}).get(name) or {}).get("output descriptions")
    if description:
        metadata["output_description"] = description

    return Task(
        name=name,
        type=task_type,
        instances=instances,
        # Tk-Instruct's collator uses the first definition when a task has several.
        definition=definitions[0],
        category=category,
        positive_examples=_demonstrations(data, file, "Positive Examples"),
        negative_examples=_demonstrations(data, file, "Negative Examples"),
        label_space=label_space,
        metric=metric_for_category(category),
        source="superni",
        metadata=metadata,
    )


def _read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise HeedfulError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None


def _definitions(data: dict[str, Any], file: Path) -> list[str]:
    if "Definition" not in data:
        raise HeedfulError(f"{where(file, field='Definition')} is missing")
    raw = data["Definition"]
    definitions = [raw] if isinstance(raw, str) else raw
    if not isinstance(definitions, list) or not all(isinstance(d, str) for d in definitions):
        raise HeedfulError(f"{where(file, field='Definition')} must be a string or a list of strings")
    if not definitions:
        raise HeedfulError(f"{where(file, field='Definition')} is empty")
    return definitions


def _string_list(value: Any, file: Path, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HeedfulError(f"{where(file, field=field)} must be a list of strings")
    return value


def _instances(data: dict[str, Any], file: Path, name: str) -> list[Instance]:
    if "Instances" not in data:
        raise HeedfulError(f"{where(file, field='Instances')} is missing")
    raw = data["Instances"]
    if not isinstance(raw, list):
        raise HeedfulError(f"{where(file, field='Instances')} must be a list")
    if not raw:
        raise HeedfulError(f"{where(file, field='Instances')} is empty")
    instances = []
    for index, item in enumerate(raw):
        field = f"Instances[{index}]"
        if not isinstance(item, dict):
            raise HeedfulError(f"{where(file, field=field)} must be an object")
        if "input" not in item:
            raise HeedfulError(f"{where(file, field=field + '.input')} is missing")
        if "output" not in item:
            raise HeedfulError(f"{where(file, field=field + '.output')} is missing")
        text, outputs = item["input"], item["output"]
        if not isinstance(text, str):
            raise HeedfulError(f"{where(file, field=field + '.input')} must be a string")
        outputs = [outputs] if isinstance(outputs, str) else outputs
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise HeedfulError(f"{where(file, field=field + '.output')} must be a list of strings")
        if not outputs:
            raise HeedfulError(f"{where(file, field=field + '.output')} is empty")
        instances.append(
            Instance(
                id=str(item.get("id") or f"{name}-{index}"),
                input=text,
                references=tuple(outputs),
                split=split_for_index(index),
            )
        )
    return instances


def _demonstrations(data: dict[str, Any], file: Path, key: str) -> tuple[Demonstration, ...]:
    raw = data.get(key) or []
    if not isinstance(raw, list):
        raise HeedfulError(f"{where(file, field=key)} must be a list")
    demos = []
    for index, item in enumerate(raw):
        field = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise HeedfulError(f"{where(file, field=field)} must be an object")
        values = {}
        for part in ("input", "output", "explanation"):
            value = item.get(part)
            if value is None and part != "explanation":
                raise HeedfulError(f"{where(file, field=f'{field}.{part}')} is missing")
            if value is not None and not isinstance(value, str):
                raise HeedfulError(f"{where(file, field=f'{field}.{part}')} must be a string")
            values[part] = value or ""
        demos.append(Demonstration(**values))
    return tuple(demos)


def _type_and_labels(
    instances: list[Instance], space: dict[str, Any] | None
) -> tuple[TaskType, tuple[str, ...] | None]:
    if space is not None:
        labels = tuple(dict.fromkeys(space["demo labels"]))
        if not labels or labels == (FREE_TEXT_LABEL,):
            return TaskType.GENERATION, None
        return TaskType.CLASSIFICATION, labels
    labels = infer_label_space(instances)
    return (TaskType.CLASSIFICATION, labels) if labels else (TaskType.GENERATION, None)


def infer_label_space(instances: list[Instance]) -> tuple[str, ...] | None:
    """The sorted distinct training outputs, if few enough to be a label space (else None: open text).

    Read off the train split (the non-test instances when there is none): a label space read
    off the test instances would leak their answers into baselines.
    """
    pool = [i for i in instances if i.split == "train"] or [i for i in instances if i.split != "test"]
    outputs = {ref for inst in pool for ref in inst.references}
    return tuple(sorted(outputs)) if outputs and len(outputs) <= MAX_CLASSIFICATION_LABELS else None
