"""The FormatSpread-style format grammar: its size, seeded samples, and rendering through the collection renderer."""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.perturbations.formats import (
    DEFAULT_FORMAT,
    FORMAT_GRAMMAR,
    Format,
    all_formats,
    check_format,
    format_instruction,
    sample_formats,
)
from heedful.prompts.collection import load_collection, save_collection
from heedful.prompts.render import render_instruction
from heedful.tasks.mmlu import load_mmlu
from heedful.tasks.types import Instance, Task, TaskType
from shared_data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
MMLU_CSV = SHARED_DATA / "mmlu" / "test" / "abstract_algebra_test.csv"
TEXT = "Pick the correct answer."
TASK = Task(name="toy", type=TaskType.MULTIPLE_CHOICE, instances=[])
INSTANCE = Instance(
    id="q1", input="  Which colour is the sky?\n", references=("blue",), options=("red", "blue", "green", "grey"),
    gold=1,
)
# The option markers each enumerator should show, written out independently of the module.
MARKERS = {
    "A.": lambda i: "ABCD"[i] + ". ",
    "(A)": lambda i: "(" + "ABCD"[i] + ") ",
    "a)": lambda i: "abcd"[i] + ") ",
    "1.": lambda i: str(i + 1) + ". ",
    "(A) inline": lambda i: "(" + "ABCD"[i] + ") ",
}
INLINE = {"(A) inline"}
CASED = {"title": ("Question", "Options", "Answer"), "upper": ("QUESTION", "OPTIONS", "ANSWER"),
         "lower": ("question", "options", "answer")}


def _check_rendered(fmt: Format, instance: Instance, text: str = TEXT) -> None:
    """The prompt shows every field and option as ``fmt`` says, and the target is the gold marker."""
    ex = render_instruction(format_instruction(text, fmt), TASK, instance)
    question, options, answer = CASED[fmt.casing]
    markers = [MARKERS[fmt.enumerator](i) for i in range(len(instance.options))]
    listed = [m + o for m, o in zip(markers, instance.options, strict=True)]
    if fmt.enumerator in INLINE:
        block = options + fmt.separator + " ".join(listed)
    else:
        block = options + fmt.separator.rstrip(" ").rstrip("\n") + "\n" + "\n".join(listed)
    expected = fmt.space.join(
        [text, question + fmt.separator + instance.input.strip(), block, answer + fmt.separator.rstrip(" ")]
    )
    assert ex.prompt == expected
    assert ex.choices == tuple(m.strip(" .()") for m in markers)
    assert ex.gold == instance.gold
    assert ex.references == (ex.choices[instance.gold],)


def test_grammar_has_222_checked_formats_default_first():
    formats = all_formats()
    # 3 casings x 5 separators x 4 spaces x 5 enumerators = 300, less 30 (a newline inside fields but
    # none between them) and 48 (options one per line before a plain space).
    assert [len(v) for v in FORMAT_GRAMMAR.values()] == [3, 5, 4, 5]
    assert len(formats) == 222
    assert formats[0] == DEFAULT_FORMAT
    assert len(set(formats)) == len({f.id for f in formats}) == len({f.describe() for f in formats}) == 222
    for fmt in formats:
        check_format(fmt)
    rejected = 0
    for values in itertools.product(*FORMAT_GRAMMAR.values()):
        fmt = Format(*values)
        if fmt not in formats:
            rejected += 1
            with pytest.raises(HeedfulError):
                check_format(fmt)
    assert rejected == 300 - 222


def test_default_format_is_the_plain_layout():
    ex = render_instruction(format_instruction(TEXT, DEFAULT_FORMAT), TASK, INSTANCE)
    assert ex.prompt == (
        "Pick the correct answer.\nQuestion: Which colour is the sky?\n"
        "Options:\nA. red\nB. blue\nC. green\nD. grey\nAnswer:"
    )
    assert DEFAULT_FORMAT.id == "title-colon-nl-upper_dot"
    assert "\n" not in DEFAULT_FORMAT.describe()


def test_sample_is_seeded_stable_starts_with_default_and_never_repeats():
    sample = sample_formats(40, seed=7)
    assert len(sample) == 40 == len(set(sample))
    assert sample[0] == DEFAULT_FORMAT
    assert sample == sample_formats(40, seed=7)
    assert sample != sample_formats(40, seed=8)
    assert sample[:10] == sample_formats(10, seed=7)
    assert set(sample_formats(222, seed=3)) == set(all_formats())
    assert sample_formats(1, seed=5) == (DEFAULT_FORMAT,)
    for bad in (0, 223):
        with pytest.raises(HeedfulError, match="cannot sample"):
            sample_formats(bad, seed=0)


def test_sample_is_the_same_in_another_process():
    code = (
        "from heedful.perturbations.formats import sample_formats\n"
        "print(' '.join(f.id for f in sample_formats(25, 11)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    assert out.stdout.split() == [f.id for f in sample_formats(25, 11)]


@pytest.mark.parametrize("fmt", all_formats(), ids=lambda f: f.id)
def test_every_format_renders_a_choice_instance(fmt):
    _check_rendered(fmt, INSTANCE)


def test_every_format_renders_real_mmlu_instances():
    if not MMLU_CSV.is_file():
        pytest.skip(f"MMLU data not found: {MMLU_CSV}")
    (task,) = load_mmlu(MMLU_CSV)
    for fmt in all_formats():
        for instance in task.instances[:5]:
            _check_rendered(fmt, instance)


def test_braces_in_text_and_input_stay_literal():
    instance = dataclasses.replace(INSTANCE, input="What is {x} in {{y}}?")
    text = "Reply with {one} letter } {"
    for fmt in sample_formats(12, seed=0):
        _check_rendered(fmt, instance, text=text)


def test_records_pass_collection_validation(tmp_path):
    instructions = [format_instruction("Use {braces}.", fmt, task_name="toy") for fmt in all_formats()]
    path = tmp_path / "formats.jsonl"
    save_collection(instructions, path)
    loaded = load_collection(path)
    def bare(insts):
        return [dataclasses.replace(i, origin="") for i in insts]

    assert bare(loaded) == bare(instructions)


def test_instruction_metadata_and_text_answers():
    fmt = Format(casing="upper", separator=" = ", space=" || ", enumerator="1.")
    inst = format_instruction("", fmt, task_name="toy", answer="text")
    assert (inst.id, inst.kind, inst.collection, inst.task) == (f"format/{fmt.id}", "format", "formats", "toy")
    assert inst.params == {"casing": "upper", "separator": " = ", "space": " || ", "enumerator": "1."}
    ex = render_instruction(inst, TASK, INSTANCE)
    assert ex.prompt == (
        "QUESTION = Which colour is the sky? || OPTIONS =\n1. red\n2. blue\n3. green\n4. grey || ANSWER ="
    )
    assert ex.references == ("blue",) and ex.choices == INSTANCE.options
    with pytest.raises(HeedfulError, match="answer"):
        format_instruction(TEXT, fmt, answer="index")


def test_numbered_options_stop_at_nine():
    many = Instance(id="m", input="Pick.", references=("o9",), options=tuple(f"o{i}" for i in range(10)), gold=9)
    with pytest.raises(HeedfulError, match="10 options but only 9"):
        render_instruction(format_instruction(TEXT, Format(enumerator="1.")), TASK, many)
    assert render_instruction(format_instruction(TEXT, DEFAULT_FORMAT), TASK, many).references == ("J",)


@pytest.mark.parametrize(
    ("fmt", "reason"),
    [
        (Format(separator=":\n", space=" "), "breaks the line inside a field"),
        (Format(separator=":\n", space=" || ", enumerator="(A) inline"), "breaks the line inside a field"),
        (Format(space=" ", enumerator="a)"), "run into the Answer descriptor"),
        (Format(casing="camel"), "casing 'camel' is not one of"),
        (Format(separator=""), "separator '' is not one of"),
    ],
)
def test_check_format_rejects_bad_combinations(fmt, reason):
    with pytest.raises(HeedfulError, match=reason) as info:
        check_format(fmt)
    assert "\n" not in str(info.value)
    with pytest.raises(HeedfulError):
        format_instruction(TEXT, fmt)
    assert fmt not in all_formats()
