"""Evaluation records for tests: a :class:`~heedful.evaluate.records.Record` with defaults."""

from __future__ import annotations

from typing import Any

from heedful.evaluate.records import Record

DEFAULTS: dict[str, Any] = {
    "task": "t",
    "category": "",
    "instruction_id": "i",
    "instruction_kind": "designer",
    "instruction_collection": "test",
    "instance_id": "0",
    "prompt": "",
    "references": ("",),
    "prediction": "",
    "gold": None,
    "metric": "accuracy",
    "score": 0.0,
}


def record(**fields: Any) -> Record:
    """A valid record: ``fields`` over :data:`DEFAULTS` (``instance_id`` may be an int)."""
    values = {**DEFAULTS, **fields}
    values["instance_id"] = str(values["instance_id"])
    values["references"] = tuple(values["references"])
    return Record(**values)
