"""Instruction collections: JSONL files of declarative prompt templates.

The format is documented in docs/instruction-format.md. Every record is checked when the
file is loaded, so a broken record fails with its file and line before any model runs,
not halfway through an evaluation.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import regex

from heedful.errors import HeedfulError
from heedful.io import read_text, write_jsonl_atomic
from heedful.prompts.instruction import Instruction, OptionsSpec
from heedful.prompts.render import compile_extract
from heedful.prompts.safe_format import template_fields

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TASK_TYPES = ("QA", "BC", "MC")
ANSWERS = ("text", "letter")
WRAPPERS = ("alpaca",)
# The format's computed fields, plus heedful's "input_period" (Tk-Instruct's rule: "."
# unless the input ends in ASCII punctuation), which lets a template reproduce SuperNI
# prompts exactly.
EXTRA_FIELD_KINDS = ("n_options", "n_options_word", "option_letters", "input_period")
ITEM_FIELDS = frozenset({"letter", "text", "index"})
CHOICE_FIELD_KEYS = frozenset({"letter", "index"})
# The kinds of the released collections; perturbations add their own names, so any
# lower-case slug is accepted as a kind (a typo'd upper-case or spaced kind is not).
KNOWN_KINDS = ("observed", "unobserved", "designer", "closest", "incorrect", "negated", "nonsense")
_KIND_RE = re.compile(r"[a-z][a-z0-9_\-]*")

# Field order of a record as written by save_collection (the documented order).
RECORD_FIELDS = (
    "id", "task", "task_type", "kind", "collection", "template", "extract", "options",
    "choice_fields", "extra_fields", "label_map", "fixed_options", "answer", "wrapper", "notes",
)
# heedful's one extension: perturbation parameters (seed, rate, source id ...) of
# generated instructions, so a cached paraphrase keeps its provenance.
OPTIONAL_FIELDS = ("params",)
_OPTIONS_KEYS = ("field", "item", "sep", "prefix", "suffix", "letters")


class _RecordError(Exception):
    """A reason a record is invalid; the loader adds file, line and id."""


def _expect(value: Any, kind: type | tuple[type, ...], name: str, *, nullable: bool = True) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        got = "null" if value is None else type(value).__name__
        raise _RecordError(f"field '{name}' must be {want}{' or null' if nullable else ''}, not {got}")
    return value


def _str_map(value: Any, name: str) -> dict[str, str] | None:
    _expect(value, dict, name)
    if value is None:
        return None
    for key, val in value.items():
        if not isinstance(val, str):
            raise _RecordError(f"field '{name}': value of '{key}' must be a string")
    return dict(value)


def _checked_template(text: str, name: str, allowed: frozenset[str] | None = None) -> set[str]:
    try:
        fields = template_fields(text)
    except ValueError as exc:
        raise _RecordError(f"field '{name}': {exc}") from None
    if allowed is not None and not fields <= allowed:
        bad = ", ".join("{" + f + "}" for f in sorted(fields - allowed))
        ok = ", ".join("{" + f + "}" for f in sorted(allowed))
        raise _RecordError(f"field '{name}' may only use {ok}, not {bad}")
    return fields


def _parse_options(value: Any) -> OptionsSpec | None:
    _expect(value, dict, "options")
    if value is None:
        return None
    unknown = sorted(set(value) - set(_OPTIONS_KEYS))
    if unknown:
        raise _RecordError(f"field 'options': unknown key '{unknown[0]}' (expected {', '.join(_OPTIONS_KEYS)})")
    for key in ("field", "item"):
        if key not in value:
            raise _RecordError(f"field 'options': missing key '{key}'")
    parts = {}
    for key in _OPTIONS_KEYS:
        raw = value.get(key)
        if raw is None and key not in ("field", "item"):
            continue
        if not isinstance(raw, str):
            raise _RecordError(f"field 'options.{key}' must be a string")
        parts[key] = raw
    if not parts["field"].isidentifier():
        raise _RecordError(f"field 'options.field': '{parts['field']}' is not a plain placeholder name")
    _checked_template(parts["item"], "options.item", ITEM_FIELDS)
    letters = parts.get("letters", LETTERS)
    if not letters or len(set(letters)) != len(letters):
        raise _RecordError("field 'options.letters' must be a non-empty string of distinct characters")
    return OptionsSpec(**parts)


def _choice_field_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching every field name ``pattern`` can produce (``choice{letter}`` -> choiceA..)."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(pattern):
        out.append(re.escape(literal))
        if name == "letter":
            out.append("[A-Z]")
        elif name == "index":
            out.append("[1-9][0-9]*")
    return re.compile("".join(out))


def _identity_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Check the record's field names and its identity fields (id, template, kind, collection, task, task_type)."""
    unknown = sorted(set(record) - set(RECORD_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise _RecordError(f"unknown field '{unknown[0]}'")
    for name in ("id", "template", "kind", "collection"):
        if record.get(name) is None:
            raise _RecordError(f"missing field '{name}'")
    rid = _expect(record["id"], str, "id", nullable=False)
    if not rid.strip():
        raise _RecordError("field 'id' is empty")
    template = _expect(record["template"], str, "template", nullable=False)
    kind = _expect(record["kind"], str, "kind", nullable=False)
    if not _KIND_RE.fullmatch(kind):
        raise _RecordError(
            f"field 'kind': '{kind}' is not a kind (one of {', '.join(KNOWN_KINDS)}, or a lower-case perturbation name)"
        )
    collection = _expect(record["collection"], str, "collection", nullable=False)
    if not collection.strip():
        raise _RecordError("field 'collection' is empty")
    task = _expect(record.get("task"), str, "task")
    task_type = _expect(record.get("task_type"), str, "task_type")
    if task_type is not None and task_type not in TASK_TYPES:
        raise _RecordError(f"field 'task_type': '{task_type}' is not one of {', '.join(TASK_TYPES)}")
    return {
        "id": rid,
        "template": template,
        "kind": kind,
        "collection": collection,
        "task": task,
        "task_type": task_type,
    }


def _parse_extract(value: Any) -> tuple[str | None, set[str]]:
    """The ``extract`` regex and the names of its groups (the placeholders it provides)."""
    extract = _expect(value, str, "extract")
    groups: set[str] = set()
    if extract is not None:
        try:
            groups = set(compile_extract(extract).groupindex)
        except regex.error as exc:
            raise _RecordError(f"field 'extract' is not a valid regular expression: {exc}") from None
    return extract, groups


def _parse_choice_fields(value: Any) -> str | None:
    """The ``choice_fields`` pattern, which must tell the options apart by letter or index."""
    choice_fields = _expect(value, str, "choice_fields")
    if choice_fields is not None:
        keys = _checked_template(choice_fields, "choice_fields", CHOICE_FIELD_KEYS)
        if not keys:
            raise _RecordError(
                "field 'choice_fields' must use {letter} or {index}, or every option would get the same name"
            )
    return choice_fields


def _parse_extra_fields(value: Any) -> dict[str, str] | None:
    """The ``extra_fields`` map of placeholder name to computed-field kind."""
    extra_fields = _str_map(value, "extra_fields")
    for name, kind_ in (extra_fields or {}).items():
        if not name.isidentifier():
            raise _RecordError(f"field 'extra_fields': '{name}' is not a plain placeholder name")
        if kind_ not in EXTRA_FIELD_KINDS:
            raise _RecordError(
                f"field 'extra_fields': kind '{kind_}' of '{name}' is not one of {', '.join(EXTRA_FIELD_KINDS)}"
            )
    return extra_fields


def _answer_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Check the fields that shape the answer and the record's metadata (label_map ... notes, params)."""
    label_map = _str_map(record.get("label_map"), "label_map")
    fixed = _expect(record.get("fixed_options"), list, "fixed_options")
    if fixed is not None:
        if not fixed or not all(isinstance(o, str) for o in fixed):
            raise _RecordError("field 'fixed_options' must be a non-empty list of strings")
        fixed = tuple(fixed)
    answer = record.get("answer", "text")
    if answer not in ANSWERS:
        raise _RecordError(f"field 'answer': {json.dumps(answer)} is not one of {', '.join(ANSWERS)}")
    wrapper = record.get("wrapper")
    if wrapper is not None and wrapper not in WRAPPERS:
        raise _RecordError(f"field 'wrapper': {json.dumps(wrapper)} is not one of {', '.join(WRAPPERS)} or null")
    notes = record.get("notes")
    notes = [] if notes is None else _expect(notes, list, "notes")
    if not all(isinstance(n, str) for n in notes):
        raise _RecordError("field 'notes' must be a list of strings")
    params = _expect(record.get("params"), dict, "params") or {}
    return {
        "label_map": label_map,
        "fixed_options": fixed,
        "answer": answer,
        "wrapper": wrapper,
        "notes": tuple(notes),
        "params": dict(params),
    }


def _check_placeholders_provided(
    template: str,
    groups: set[str],
    options: OptionsSpec | None,
    choice_fields: str | None,
    extra_fields: dict[str, str] | None,
) -> None:
    """Raise unless every placeholder of ``template`` comes from some rule."""
    # A placeholder no rule provides could never be filled, so the record could never render.
    provided = {"input"} | groups | set(extra_fields or {})
    if options is not None:
        provided.add(options.field)
    choice_re = _choice_field_regex(choice_fields) if choice_fields is not None else None
    for name in sorted(_checked_template(template, "template")):
        if name not in provided and not (choice_re is not None and choice_re.fullmatch(name)):
            raise _RecordError(
                f"template placeholder {{{name}}} is not provided by any rule "
                "(input, extract groups, options.field, choice_fields, extra_fields)"
            )


def _parse_record(record: Any) -> Instruction:
    """Validate one collection record and build its Instruction; raises ``_RecordError``."""
    if not isinstance(record, dict):
        raise _RecordError(f"a record must be a JSON object, not {type(record).__name__}")
    # A fixed order of checks, so a record with several faults always reports the same one.
    identity = _identity_fields(record)
    extract, groups = _parse_extract(record.get("extract"))
    options = _parse_options(record.get("options"))
    choice_fields = _parse_choice_fields(record.get("choice_fields"))
    extra_fields = _parse_extra_fields(record.get("extra_fields"))
    answer_fields = _answer_fields(record)
    _check_placeholders_provided(identity["template"], groups, options, choice_fields, extra_fields)
    return Instruction(
        **identity,
        extract=extract,
        options=options,
        choice_fields=choice_fields,
        extra_fields=extra_fields,
        **answer_fields,
    )


def load_collection(path: str | Path) -> list[Instruction]:
    """Load and validate an instruction collection (JSONL, one record a line).

    Each instruction's ``origin`` is ``FILE:LINE``. Blank lines are skipped. A malformed
    line, an invalid record or a repeated (task, id) raises ``HeedfulError`` naming the
    file and line.
    """
    path = Path(path)
    text = read_text(path, what="instruction collection")
    out: list[Instruction] = []
    seen: dict[tuple[str | None, str], int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HeedfulError(f"{path}:{lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        rid = record.get("id") if isinstance(record, dict) else None
        label = f"record '{rid}'" if isinstance(rid, str) else "record"
        try:
            inst = _parse_record(record)
        except _RecordError as exc:
            raise HeedfulError(f"{path}:{lineno}: {label}: {exc}") from None
        key = (inst.task, inst.id)
        if key in seen:
            task = "task-independent" if inst.task is None else f"task '{inst.task}'"
            raise HeedfulError(f"{path}:{lineno}: {label}: duplicate id for {task} (first on line {seen[key]})")
        seen[key] = lineno
        out.append(replace(inst, origin=f"{path}:{lineno}"))
    return out


def instruction_to_record(inst: Instruction) -> dict[str, Any]:
    """The JSON record of ``inst`` in the collection format (all fields, documented order)."""
    options = None
    if inst.options is not None:
        o = inst.options
        options = {"field": o.field, "item": o.item, "sep": o.sep, "prefix": o.prefix, "suffix": o.suffix, "letters": o.letters}
    record: dict[str, Any] = {
        "id": inst.id,
        "task": inst.task,
        "task_type": inst.task_type,
        "kind": inst.kind,
        "collection": inst.collection,
        "template": inst.template,
        "extract": inst.extract,
        "options": options,
        "choice_fields": inst.choice_fields,
        "extra_fields": dict(inst.extra_fields) if inst.extra_fields is not None else None,
        "label_map": dict(inst.label_map) if inst.label_map is not None else None,
        "fixed_options": list(inst.fixed_options) if inst.fixed_options is not None else None,
        "answer": inst.answer,
        "wrapper": inst.wrapper,
        "notes": list(inst.notes),
    }
    if inst.params:
        record["params"] = dict(inst.params)
    return record


def save_collection(instructions: Iterable[Instruction], path: str | Path) -> None:
    """Write ``instructions`` as a collection file, atomically (temp file + rename).

    Every instruction is validated first, and (task, id) must be unique, so a saved file
    always loads back. ``params`` must be JSON-serialisable.
    """
    rows = []
    seen: set[tuple[str | None, str]] = set()
    for inst in instructions:
        record = instruction_to_record(inst)
        try:
            _parse_record(json.loads(json.dumps(record)))
        except _RecordError as exc:
            raise HeedfulError(f"{path}: instruction '{inst.id}' ({inst.origin or 'no origin'}): {exc}") from None
        except TypeError as exc:
            raise HeedfulError(f"{path}: instruction '{inst.id}': params are not JSON-serialisable ({exc})") from None
        key = (inst.task, inst.id)
        if key in seen:
            raise HeedfulError(f"{path}: duplicate instruction id '{inst.id}' for task {inst.task!r}")
        seen.add(key)
        rows.append(record)
    write_jsonl_atomic(path, rows)
