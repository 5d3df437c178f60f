"""Fixtures for training tests: the tiny models and tokenizers of tests/models/conftest.py,
and short real SuperNI training examples that fit the tiny models' context."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from heedful.tasks.types import Task

_MODELS_CONFTEST = Path(__file__).resolve().parents[1] / "models" / "conftest.py"
_spec = importlib.util.spec_from_file_location("heedful_tests_models_conftest", _MODELS_CONFTEST)
assert _spec is not None and _spec.loader is not None
_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_models)

# Re-exported so pytest finds them here; the tokenizers are the models helper's fixtures.
causal_tokenizer = _models.causal_tokenizer
t5_tokenizer = _models.t5_tokenizer

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
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


@pytest.fixture(scope="session")
def tiny_llama():
    """Factory ``tiny_llama(vocab_size, seed=0)`` of tests/models/conftest.py."""
    return _models.tiny_llama


@pytest.fixture(scope="session")
def tiny_t5():
    """Factory ``tiny_t5(vocab_size, seed=0)`` of tests/models/conftest.py."""
    return _models.tiny_t5
