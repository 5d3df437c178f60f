"""MMLU (Hendrycks et al., 2021) subject CSVs as heedful :class:`Task` objects.

The release's format: one CSV per subject, ``<subject>_<split>.csv`` (``_test``,
``_dev``, ``_val``), no header, rows ``question, A, B, C, D, answer letter``. Each
subject becomes the task ``mmlu_<subject>`` (lm-evaluation-harness's naming) with the
options in A-D order, never shuffled: letters are part of how MMLU is asked.
``metadata["base_task"]`` is ``"mmlu"``, the task name instruction collections use.
"""

from __future__ import annotations

import csv
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.tasks.types import Instance, Task, TaskType

LETTERS = "ABCD"
_SPLIT_SUFFIXES = ("_test", "_dev", "_val")


def subject_of(path: Path) -> str:
    """The subject of a CSV file: its stem without the ``_test``/``_dev``/``_val`` suffix."""
    stem = path.stem
    for suffix in _SPLIT_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _csv_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise HeedfulError(f"{path}: no MMLU .csv files")
        return files
    raise HeedfulError(f"{path}: no such MMLU file or folder")


def read_mmlu_csv(path: str | Path, split: str = "test") -> list[Instance]:
    """Rows of one MMLU CSV as instances (ids ``0, 1, ...``; ``dev-0, ...`` for ``train``)."""
    path = Path(path)
    prefix = "" if split == "test" else "dev-"
    instances: list[Instance] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            start = 1
            for row in reader:
                # A quoted field may span lines: report the line the record starts on.
                loc = f"{path}:{start}"
                start = reader.line_num + 1
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != 6:
                    raise HeedfulError(
                        f"{loc}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}"
                    )
                answer = row[5].strip()
                if len(answer) != 1 or answer not in LETTERS:
                    raise HeedfulError(f"{loc}: answer must be one of A, B, C, D, got {row[5]!r}")
                options = tuple(row[1:5])
                gold = LETTERS.index(answer)
                instances.append(
                    Instance(
                        id=f"{prefix}{len(instances)}",
                        input=row[0],
                        references=(options[gold],),
                        options=options,
                        gold=gold,
                        split=split,
                    )
                )
    except UnicodeDecodeError as err:
        raise HeedfulError(f"{path}: not UTF-8 text ({err.reason})") from None
    except csv.Error as err:
        raise HeedfulError(f"{path}:{start}: malformed CSV: {err}") from None
    if not instances:
        raise HeedfulError(f"{path}: no rows")
    return instances


def load_mmlu(path: str | Path, dev_path: str | Path | None = None) -> list[Task]:
    """Load MMLU subjects from a folder of ``<subject>_test.csv`` files (or one CSV).

    ``dev_path`` (a folder of ``<subject>_dev.csv`` or one CSV) adds each subject's rows
    as ``train``-split instances, the pool few-shot demonstrations are drawn from; dev
    subjects without a test file are ignored.
    """
    test_files = _csv_files(Path(path))
    dev_files = {subject_of(p): p for p in _csv_files(Path(dev_path))} if dev_path is not None else {}
    tasks = []
    for file in test_files:
        subject = subject_of(file)
        instances = read_mmlu_csv(file, "test")
        if subject in dev_files:
            instances += read_mmlu_csv(dev_files[subject], "train")
        tasks.append(
            Task(
                name=f"mmlu_{subject}",
                type=TaskType.MULTIPLE_CHOICE,
                instances=instances,
                category=subject,
                metric="accuracy",
                source="mmlu",
                metadata={"base_task": "mmlu", "subject": subject, "path": str(file)},
            )
        )
    return tasks
