"""Gupta 2023's prompt format against a literal transcription of its data_prep.py.

Reference: srsawant34/efficient_instruction_learning ``data_prep.py`` at commit
40f45f73f1653ab79b04da21c9dbe858ace5d8f8 (``DatasetReader.getExamples`` / ``getRows``),
and for a hand check the prompts that script wrote into the same repository,
``data/with_instructions/tasks/task1155/ten.csv`` at commit
4db3bd5a2725174f792cc127e722e8afb6df0f9a.
"""

from __future__ import annotations

import json

import pytest

from heedful.errors import HeedfulError
from heedful.prompts.gupta import encode_gupta
from heedful.prompts.superni import encode
from heedful.tasks.superni import load_superni
from shared_data import SHARED_DATA

DATA = SHARED_DATA / "superni"
TASKS = DATA / "tasks"
SMALL = "task1155_bard_analogical_reasoning_trash_or_treasure"

pytestmark = pytest.mark.skipif(not TASKS.is_dir(), reason=f"SuperNI reference data not found at {DATA}")


def _get_examples(data, which, num_examples=2):
    """DatasetReader.getExamples, transcribed."""
    keys = list(data[0].keys())
    s = ""
    if num_examples:
        for i in range(num_examples):
            srow = f"{which} example {i+1}-\n{keys[0]}: {data[i][keys[0]]}\n{keys[1]}: {data[i][keys[1]]}"
            s += srow + "\n"
        return s
    else:
        return ""


def _get_rows_inputs(data, num_examples, onlyIPOP=False):
    """DatasetReader.getRows without the random output choice: the prompt column only."""
    definition = data["Definition"][0]
    positives = data["Positive Examples"]
    instances = data["Instances"]
    pos = _get_examples(positives, "Positive", num_examples)
    rows = []
    if onlyIPOP:
        for i in range(len(instances)):
            rows.append("input: " + instances[i]["input"] + "\noutput: ")
    else:
        for i in range(len(instances)):
            rows.append(
                "Definition: " + definition + "\n" + pos
                + "Now complete the following example-\ninput: " + instances[i]["input"] + "\noutput: "
            )
    return rows


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(TASKS.glob("*.json"))}


@pytest.fixture(scope="module")
def tasks():
    return {t.name: t for t in load_superni(TASKS)}


@pytest.mark.parametrize("num_examples", [2, 0, 1])
def test_all_tasks_all_instances_match_data_prep(tasks, raw, num_examples):
    for name, data in raw.items():
        task = tasks[name]
        with_inst = _get_rows_inputs(data, num_examples)
        without = _get_rows_inputs(data, num_examples, onlyIPOP=True)
        for inst, expected, expected_plain in zip(task.instances, with_inst, without, strict=True):
            assert encode_gupta(task, inst.input, num_pos_examples=num_examples) == expected, name
            assert encode_gupta(task, inst.input, with_instruction=False) == expected_plain, name
        if num_examples == 2:
            first = task.instances[0].input
            assert encode(task, first, "gupta") == with_inst[0]
            assert encode(task, first, "gupta-noinst") == without[0]


# The first prompt of task1155/ten.csv (train instance 110), as data_prep.py wrote it
# (CSV quoting undone: "" -> ").
TEN_CSV_ROW_1 = (
    'Definition: Two analogies that relate items to whether they are trash or treasure is given in the form '
    '"A : B. C : ?". Items marked as "trash" are considered to not have value and can be disposed, whereas '
    'those marked as "treasure" are considered valuable items that must be retained. "A : "B relates item A '
    "to whether it is trash or treasure, as specified by B. Your task is to replace the question mark (?) with "
    'either `trash` or `treasure` for the given item C, following the "A : B" relation.\n'
    "Positive example 1-\ninput: book : treasure. pillow : ?\noutput: treasure\n"
    "Positive example 2-\ninput: leaf : trash. ring : ?\noutput: treasure\n"
    "Now complete the following example-\ninput: wrapper : trash. book : ?\noutput: "
)


def test_hand_checked_against_released_csv(tasks):
    task = tasks[SMALL]
    inst = task.instances[110]
    assert inst.split == "train" and inst.references == ("treasure",)
    assert encode_gupta(task, inst.input) == TEN_CSV_ROW_1
    assert encode(task, inst.input, "gupta") == TEN_CSV_ROW_1
    assert encode(task, inst.input, "gupta-noinst") == "input: wrapper : trash. book : ?\noutput: "


def test_unstripped_text_is_kept(tasks):
    # task034's definition ends in whitespace; data_prep.py does not strip it.
    task = tasks["task034_winogrande_question_modification_object"]
    assert task.definition != task.definition.strip()
    assert encode_gupta(task, " x ").startswith(f"Definition: {task.definition}\nPositive example 1-")
    assert encode_gupta(task, " x ").endswith("example-\ninput:  x \noutput: ")


def test_bad_example_count(tasks):
    with pytest.raises(HeedfulError, match="num_pos_examples"):
        encode_gupta(tasks[SMALL], "x", num_pos_examples=-1)
