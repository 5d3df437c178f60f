"""The safe formatter accepts exactly plain named fields and doubled braces."""

from __future__ import annotations

import json

import pytest

from heedful.prompts.safe_format import MissingFieldError, escape_braces, safe_format, template_fields
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "instructions"


def test_named_fields_are_listed_and_filled():
    template = "Q: {input}\n{options}\nAnswer ({option_letters}):"
    assert template_fields(template) == {"input", "options", "option_letters"}
    out = safe_format(template, {"input": "2+2?", "options": "(A) 4", "option_letters": "'A'"})
    assert out == "Q: 2+2?\n(A) 4\nAnswer ('A'):"


def test_doubled_braces_are_literal_and_a_repeated_field_fills_twice():
    assert template_fields("{{not a field}} {x}{x}") == {"x"}
    assert safe_format("{{not a field}} {x}{x}", {"x": "1"}) == "{not a field} 11"


def test_values_are_inserted_verbatim_not_reformatted():
    # A value that looks like a template must not be expanded (no second formatting pass).
    assert safe_format("{a}", {"a": "{b} {0} {__class__}", "b": "no"}) == "{b} {0} {__class__}"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{a.__class__}", "attribute or index"),
        ("{a[0]}", "attribute or index"),
        ("{a!r}", "conversion"),
        ("{a:>10}", "format spec"),
        ("{a:{b}}", "format spec"),
        ("{}", "positional"),
        ("{0}", "positional"),
        ("{a b}", "not a plain name"),
        ("open { brace", "malformed braces"),
        ("close } brace", "malformed braces"),
        ("{a", "malformed braces"),
    ],
)
def test_unsafe_templates_are_rejected_with_a_reason(template, reason):
    with pytest.raises(ValueError, match=reason):
        template_fields(template)
    with pytest.raises(ValueError, match=reason):
        safe_format(template, {"a": "x", "b": "y"})


def test_missing_field_is_a_key_error_naming_the_field():
    with pytest.raises(KeyError) as info:
        safe_format("{input} {choiceE}", {"input": "x"})
    assert isinstance(info.value, MissingFieldError)
    assert info.value.field == "choiceE"
    assert "{choiceE}" in str(info.value)


def test_escape_braces_round_trips_literal_text():
    text = "def f(x): return {'a': x}"
    assert template_fields(escape_braces(text)) == set()
    assert safe_format(escape_braces(text) + "{input}", {"input": "!"}) == text + "!"


def test_safe_format_matches_str_format_on_every_released_template():
    """On the real collections the restricted renderer agrees with str.format."""
    files = sorted(DATA.glob("*.jsonl"))
    if not files:
        pytest.skip(f"instruction collections not found under {DATA}")
    checked = 0
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            template = record["template"]
            fields = {name: f"<{name}>" for name in template_fields(template)}
            assert safe_format(template, fields) == template.format(**fields)
            checked += 1
    assert checked > 1500
