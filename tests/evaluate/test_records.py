"""Evaluation records: one typed shape, every score a fraction, checked when read back."""

from __future__ import annotations

import json

import pytest

from heedful.errors import HeedfulError
from heedful.evaluate.records import Record
from record_factory import record

CHOICE = record(
    task="t", category="Textual Entailment", instruction_id="designer", instruction_kind="designer",
    instance_id="7", prompt="Q?", references=["yes"], prediction="yes", gold=0, metric="accuracy", score=1.0,
    options=(" yes", " no"), prediction_index=0, logliks=(-1.5, -2.25), output_key="k1",
)
GENERATION = record(
    task="g", instruction_id="superni/def", instance_id="3", prompt="Title:", references=["The cat sat", "A cat"],
    prediction="the cat", gold="The cat sat", metric="rougeL", score=0.8, exact_match=0.0, rouge_l=0.8,
)


@pytest.mark.parametrize("rec", [CHOICE, GENERATION])
def test_round_trip_through_json(rec):
    data = json.loads(json.dumps(rec.to_dict()))
    assert set(data) == {f for f in Record.__dataclass_fields__}  # every field, always
    assert Record.from_dict(data) == rec


def test_records_jsonl_lines_without_the_cache_key_read_back():
    data = {k: v for k, v in CHOICE.to_dict().items() if k != "output_key"}
    assert Record.from_dict(data).output_key == ""


def test_scores_are_fractions():
    with pytest.raises(HeedfulError, match=r"record g/superni/def/3: field 'rouge_l' is 80.0, not a fraction"):
        record(task="g", instruction_id="superni/def", instance_id="3", score=0.8, rouge_l=80.0)
    for bad in (1.5, -0.1, float("nan"), float("inf")):
        with pytest.raises(HeedfulError, match="field 'score'"):
            Record.from_dict(dict(CHOICE.to_dict(), score=bad))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": None}, "here: field 'score' is not a number: None"),
        ({"score": "high"}, "here: field 'score' is not a number: 'high'"),
        ({"score": True}, "here: field 'score' is not a number: True"),
        ({"task": 3}, "here: field 'task' is not a string: 3"),
        ({"references": "yes"}, "here: field 'references' is not a list of strings"),
        ({"options": [1, 2]}, "here: field 'options' is not a list of strings"),
        ({"logliks": ["x"]}, "here: field 'logliks' is not a number: 'x'"),
        ({"prediction_index": 1.0}, "here: field 'prediction_index' is not an integer"),
        ({"gold": [0]}, "here: field 'gold' is not an index or a string"),
    ],
)
def test_bad_fields_are_named(change, message):
    with pytest.raises(HeedfulError) as err:
        Record.from_dict({**CHOICE.to_dict(), **change}, where="here")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["task", "instruction_id", "instance_id", "prompt", "references", "score"])
def test_missing_fields_are_named(name):
    data = {k: v for k, v in CHOICE.to_dict().items() if k != name}
    with pytest.raises(HeedfulError, match=f"^store.sqlite: record 4: missing field '{name}'$"):
        Record.from_dict(data, where="store.sqlite: record 4")


def test_not_an_object():
    with pytest.raises(HeedfulError, match="record: expected an object, got list"):
        Record.from_dict([1, 2])


def test_records_stored_in_percent_are_read_as_fractions():
    # Before scores were fractions, generation records had "rougeL" and "exact_match" in percent.
    old = {k: v for k, v in GENERATION.to_dict().items() if k != "rouge_l"}
    old.update(exact_match=100.0, rougeL=80.0)
    rec = Record.from_dict(old)
    assert rec.exact_match == 1.0 and rec.rouge_l == pytest.approx(0.8) and rec.score == 0.8
    # multiple choice records had neither field and read unchanged
    old_choice = {k: v for k, v in CHOICE.to_dict().items() if k not in ("exact_match", "rouge_l")}
    assert Record.from_dict(old_choice) == CHOICE


def test_records_are_frozen():
    with pytest.raises(AttributeError):
        CHOICE.score = 0.0  # type: ignore[misc]
