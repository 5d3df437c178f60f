"""Loading, validating, filtering and saving instruction collections."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.prompts.collection import instruction_to_record, load_collection, save_collection
from heedful.prompts.instruction import OptionsSpec
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "instructions"
FILES = ("bbl.jsonl", "mmlu.jsonl", "observed_generic.jsonl", "nonsense.jsonl")


def _need(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"reference collection {path} not found")
    return path


def _good() -> dict:
    return {
        "id": "X/1", "task": "hindu_knowledge", "task_type": "QA", "kind": "unobserved",
        "collection": "BBL", "template": "{input}{options}\nAnswer:", "extract": None,
        "options": {"field": "options", "item": "\n({letter}) {text}", "sep": "", "prefix": "",
                    "suffix": "", "letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
        "choice_fields": None, "extra_fields": None, "label_map": None, "fixed_options": None,
        "answer": "letter", "wrapper": None, "notes": [],
    }


def _write(tmp_path: Path, *records: object, name: str = "c.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", FILES)
def test_every_released_record_loads(name):
    path = _need(name)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    loaded = load_collection(path)
    assert len(loaded) == len(lines)
    for lineno, (inst, line) in enumerate(zip(loaded, lines), start=1):
        raw = json.loads(line)
        assert inst.origin == f"{path}:{lineno}"
        assert (inst.id, inst.task, inst.kind, inst.template) == (raw["id"], raw["task"], raw["kind"], raw["template"])
        assert instruction_to_record(inst) == raw  # nothing lost or invented


def test_worked_example_record_is_parsed_field_by_field():
    bbl = load_collection(_need("bbl.jsonl"))
    [rec] = [i for i in bbl if i.task == "hindu_knowledge" and i.id == "NIV2/QA/1"]
    assert rec.options == OptionsSpec(field="options", item="({letter}) {text} ", sep="", prefix="", suffix="",
                                      letters="ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert rec.extra_fields == {"option_letters": "option_letters"}
    assert (rec.answer, rec.kind, rec.collection, rec.task_type, rec.wrapper) == ("letter", "observed", "NIV2", "QA", None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "Observed Kind"}, "field 'kind'"),
        ({"kind": None}, "missing field 'kind'"),
        ({"id": 3}, "field 'id' must be str"),
        ({"answer": "number"}, "field 'answer'"),
        ({"wrapper": "vicuna"}, "field 'wrapper'"),
        ({"task_type": "XX"}, "field 'task_type'"),
        ({"template": "{input.__class__}"}, "attribute or index"),
        ({"template": "{input:>9}"}, "format spec"),
        ({"template": "{input!r}"}, "conversion"),
        ({"template": "{} {input}"}, "positional"),
        ({"template": "{input} }"}, "malformed braces"),
        ({"template": "{input} {context}"}, "placeholder {context} is not provided"),
        ({"extract": "(?P<ctx>[unclosed"}, "not a valid regular expression"),
        ({"options": {"field": "options", "item": "{letter} {label}"}}, "may only use"),
        ({"options": {"field": "options"}}, "missing key 'item'"),
        ({"options": {"field": "options", "item": "{text}", "colour": "red"}}, "unknown key 'colour'"),
        ({"options": {"field": "options", "item": "{text}", "letters": "AAB"}}, "distinct characters"),
        ({"choice_fields": "choice{text}"}, "may only use"),
        ({"choice_fields": "choice"}, "must use {letter} or {index}"),
        ({"extra_fields": {"n": "n_choices"}}, "kind 'n_choices'"),
        ({"label_map": {"yes": 1}}, "must be a string"),
        ({"fixed_options": []}, "non-empty list"),
        ({"notes": "one note"}, "field 'notes' must be list"),
        ({"templat": "typo"}, "unknown field 'templat'"),
    ],
)
def test_a_bad_record_names_file_line_id_and_reason(tmp_path, change, reason):
    path = _write(tmp_path, _good(), {**_good(), "id": "X/2", **change})
    with pytest.raises(HeedfulError) as info:
        load_collection(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: record")
    if "id" not in change:
        assert message.startswith(f"{path}:2: record 'X/2': ")
    assert reason in message
    assert "\n" not in message


def test_extract_groups_and_choice_fields_provide_placeholders(tmp_path):
    record = {**_good(), "template": "{context} Q: {question} A. {choiceA} B. {choiceB} ({n})", "options": None,
              "extract": r"(?P<context>.*)Q: (?P<question>.*)", "choice_fields": "choice{letter}",
              "extra_fields": {"n": "n_options"}}
    [inst] = load_collection(_write(tmp_path, record))
    assert inst.extract == record["extract"] and inst.choice_fields == "choice{letter}"


def test_malformed_json_reports_line_and_column(tmp_path):
    path = _write(tmp_path, _good(), '{"id": "X/2", "template": }')
    with pytest.raises(HeedfulError, match=rf"^{path}:2:27: invalid JSON"):
        load_collection(path)


def test_a_record_that_is_not_an_object_is_refused(tmp_path):
    with pytest.raises(HeedfulError, match=r":1: record: a record must be a JSON object"):
        load_collection(_write(tmp_path, "[1, 2]"))


def test_duplicate_task_and_id_is_an_error_but_same_id_on_other_task_is_not(tmp_path):
    other_task = {**_good(), "task": "known_unknowns"}
    assert len(load_collection(_write(tmp_path, _good(), other_task, name="ok.jsonl"))) == 2
    path = _write(tmp_path, _good(), other_task, _good())
    with pytest.raises(HeedfulError, match=r":3: record 'X/1': duplicate id for task 'hindu_knowledge' \(first on line 1\)"):
        load_collection(path)


def test_missing_file_and_blank_lines(tmp_path):
    with pytest.raises(HeedfulError, match="no such instruction collection"):
        load_collection(tmp_path / "nope.jsonl")
    path = tmp_path / "blank.jsonl"
    path.write_text("\n" + json.dumps(_good()) + "\n\n", encoding="utf-8")
    [inst] = load_collection(path)
    assert inst.origin.endswith(":2")


def test_save_round_trips_and_keeps_params(tmp_path):
    bbl = load_collection(_need("bbl.jsonl"))[:40]
    bbl[0] = replace(bbl[0], id="X/para/1", kind="paraphrase", params={"source": bbl[0].id, "seed": 3})
    out = tmp_path / "sub" / "cache.jsonl"
    save_collection(bbl, out)
    again = load_collection(out)
    assert [replace(i, origin="") for i in again] == [replace(i, origin="") for i in bbl]
    assert again[0].params == {"source": load_collection(_need("bbl.jsonl"))[0].id, "seed": 3}
    assert [p.name for p in out.parent.iterdir()] == ["cache.jsonl"]  # no temp file left behind


def test_save_refuses_invalid_instructions_and_leaves_the_old_file(tmp_path):
    bbl = load_collection(_need("bbl.jsonl"))[:3]
    out = tmp_path / "cache.jsonl"
    save_collection(bbl, out)
    before = out.read_bytes()
    with pytest.raises(HeedfulError, match=r"attribute or index"):
        save_collection([*bbl, replace(bbl[0], id="bad", template="{input.__dict__}")], out)
    with pytest.raises(HeedfulError, match="duplicate instruction id"):
        save_collection([*bbl, bbl[0]], out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cache.jsonl"]
