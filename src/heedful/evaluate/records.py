"""One scored example of an evaluation: what ``heedful eval`` stores per (task, instruction, instance).

A :class:`Record` is written to the run's store and to ``records.jsonl`` as
:meth:`Record.to_dict`, and read back with :meth:`Record.from_dict`; analysis
(:mod:`heedful.analysis`) and baselines take records, never their dicts.

Every score is a fraction in [0, 1]: ``score`` (the task's ``metric``: 0/1 accuracy for
multiple choice, else exact match or ROUGE-L) and, for generation, ``exact_match`` and
``rouge_l``. Tables that show percent multiply by 100 when they display.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heedful.errors import HeedfulError

SCORE_FIELDS = ("score", "exact_match", "rouge_l")


@dataclass(frozen=True, slots=True)
class Record:
    """One (task, instruction, instance) evaluated: the prompt, what was predicted, its scores.

    ``options`` are the continuations scored for multiple choice (None for generation),
    with their ``logliks`` (None under Sun et al.'s scoring, whose per-option
    probabilities are ``option_scores``) and the chosen ``prediction_index``; ``gold``
    is the gold option's index, or for generation the first reference. ``output_key``
    names the model output in the store's cache ("" where it was left out, as in
    ``records.jsonl``).
    """

    task: str
    category: str
    instruction_id: str
    instruction_kind: str
    instruction_collection: str
    instance_id: str
    prompt: str
    references: tuple[str, ...]
    prediction: str
    gold: int | str | None
    metric: str
    score: float
    options: tuple[str, ...] | None = None
    prediction_index: int | None = None
    logliks: tuple[float, ...] | None = None
    option_scores: tuple[float, ...] | None = None
    exact_match: float | None = None
    rouge_l: float | None = None
    task_type: str | None = None  # the collections' task type of the task: QA, BC or MC (Sun et al. 2023)
    output_key: str = ""

    def __post_init__(self) -> None:
        where = f"record {self.task}/{self.instruction_id}/{self.instance_id}"
        for name in SCORE_FIELDS:
            _check_fraction(getattr(self, name), name, where, required=name == "score")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists), every field present."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "record") -> Record:
        """A record from :meth:`to_dict`'s output; :class:`HeedfulError` names ``where`` and the field.

        Records stored before scores were fractions (generation records with ``rougeL``
        and ``exact_match`` in percent) are read with both divided by 100.
        """
        if not isinstance(data, Mapping):
            raise HeedfulError(f"{where}: expected an object, got {type(data).__name__}")
        data = dict(data)
        if "rougeL" in data and "rouge_l" not in data:
            data["rouge_l"] = _legacy_percent(data.pop("rougeL"), "rougeL", where)
            data["exact_match"] = _legacy_percent(data.get("exact_match"), "exact_match", where)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = field.name
            if name not in data:
                if field.default is dataclasses.MISSING:
                    raise HeedfulError(f"{where}: missing field '{name}'")
                continue
            values[name] = _FIELD_CHECKS[name](data[name], name, where)
        return cls(**values)


def _legacy_percent(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    return _number(value, name, where) / 100.0


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HeedfulError(f"{where}: field '{name}' is not a number: {value!r}")
    return float(value)


def _check_fraction(value: Any, name: str, where: str, *, required: bool) -> float | None:
    if value is None and not required:
        return None
    number = _number(value, name, where)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise HeedfulError(f"{where}: field '{name}' is {value!r}, not a fraction in [0, 1]")
    return number


def _string(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str):
        raise HeedfulError(f"{where}: field '{name}' is not a string: {value!r}")
    return value


def _strings(value: Any, name: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise HeedfulError(f"{where}: field '{name}' is not a list of strings: {value!r}")
    return tuple(value)


def _optional_strings(value: Any, name: str, where: str) -> tuple[str, ...] | None:
    return None if value is None else _strings(value, name, where)


def _optional_numbers(value: Any, name: str, where: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise HeedfulError(f"{where}: field '{name}' is not a list of numbers: {value!r}")
    return tuple(_number(v, name, where) for v in value)


def _optional_index(value: Any, name: str, where: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise HeedfulError(f"{where}: field '{name}' is not an integer: {value!r}")
    return value


def _gold(value: Any, name: str, where: str) -> int | str | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
        raise HeedfulError(f"{where}: field '{name}' is not an index or a string: {value!r}")
    return value


_FIELD_CHECKS: dict[str, Any] = {
    "task": _string,
    "category": _string,
    "instruction_id": _string,
    "instruction_kind": _string,
    "instruction_collection": _string,
    "instance_id": _string,
    "prompt": _string,
    "references": _strings,
    "prediction": _string,
    "gold": _gold,
    "metric": _string,
    "score": lambda v, n, w: _check_fraction(v, n, w, required=True),
    "options": _optional_strings,
    "prediction_index": _optional_index,
    "logliks": _optional_numbers,
    "option_scores": _optional_numbers,
    "exact_match": lambda v, n, w: _check_fraction(v, n, w, required=False),
    "rouge_l": lambda v, n, w: _check_fraction(v, n, w, required=False),
    "task_type": lambda v, n, w: None if v is None else _string(v, n, w),
    "output_key": _string,
}
