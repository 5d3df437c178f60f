"""Fixtures for training tests: short real SuperNI training tasks that fit the tiny models'
context (the tiny models and tokenizers come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from heedful.tasks.types import Task
from shared_data import SHARED_DATA

DATA = SHARED_DATA
SUPERNI = DATA / "superni" / "tasks"
# Two short classification tasks (one-word outputs) of the SuperNI test split.
TASK_FILES = ("task1385_anli_r1_entailment.json", "task1344_glue_entailment_classification.json")


def superni_tasks() -> list[Task]:
    from heedful.tasks.superni import load_superni

    missing = [name for name in TASK_FILES if not (SUPERNI / name).is_file()]
    if missing:
        pytest.skip(f"SuperNI data not found at {SUPERNI} ({', '.join(missing)})")
    return [load_superni(SUPERNI / name)[0] for name in TASK_FILES]


@pytest.fixture(scope="session")
def tasks() -> list[Task]:
    return superni_tasks()
