"""Perturbations on real SuperNI tasks and Sun et al.'s released instruction collection."""

from __future__ import annotations

import json
import re
import string

import pytest

from heedful.errors import HeedfulError
from heedful.perturbations.delusive import delusive_demonstrations
from heedful.perturbations.incorrect import incorrect_instruction
from heedful.perturbations.label_space import label_space_from_task, load_label_space_file
from heedful.perturbations.negation import OPPOSITE_SENTENCE, negated
from heedful.perturbations.noise import (
    NOISE,
    QWERTY_NEIGHBOURS,
    char_typos,
    drop_words,
    noisy_instruction,
    shuffle_words,
)
from heedful.perturbations.simplified import simplified_definition, simplified_task
from heedful.prompts.collection import load_collection
from heedful.prompts.instruction import Instruction
from heedful.prompts.nonsense import nonsense_instructions
from heedful.tasks.normalize import normalize_answer
from heedful.tasks.superni import load_superni
from heedful.tasks.types import Demonstration, Task, TaskType
from shared_data import SHARED_DATA

DATA = SHARED_DATA
SUPERNI = DATA / "superni"
INSTRUCTIONS = DATA / "instructions"
needs_superni = pytest.mark.skipif(not SUPERNI.is_dir(), reason=f"SuperNI reference data not found at {SUPERNI}")
needs_collection = pytest.mark.skipif(
    not (INSTRUCTIONS / "bbl.jsonl").is_file(), reason=f"instruction collections not found at {INSTRUCTIONS}"
)

CLASSIFICATION = ["task1529_scitail1.1_classification", "task641_esnli_classification", "task1393_superglue_copa_text_completion"]
GENERATION = "task1356_xlsum_title_generation"


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    loaded = {}
    for name in [*CLASSIFICATION, GENERATION, "task893_gap_fill_the_blank_coreference_resolution"]:
        (task,) = load_superni(SUPERNI / "tasks" / f"{name}.json", label_space_file=SUPERNI / "label_space.json")
        loaded[name] = task
    return loaded


@pytest.fixture(scope="module")
def bbl() -> list[Instruction]:
    if not (INSTRUCTIONS / "bbl.jsonl").is_file():
        pytest.skip(f"instruction collections not found at {INSTRUCTIONS}")
    return load_collection(INSTRUCTIONS / "bbl.jsonl")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 3]


def placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


# --- label spaces and simplified definitions ------------------------------------------


@needs_superni
def test_label_space_file_matches_json():
    spaces = load_label_space_file(SUPERNI / "label_space.json")
    raw = json.loads((SUPERNI / "label_space.json").read_text())
    assert len(spaces) == len(raw)
    labels, description = spaces["task1529_scitail1.1_classification"]
    assert labels == tuple(raw["task1529_scitail1.1_classification.json"]["demo labels"])
    assert description == raw["task1529_scitail1.1_classification.json"]["output descriptions"]
    assert spaces["task001_quoref_question_generation"][0] is None  # "Generate free text"


@needs_superni
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_simplified_definition_keeps_only_the_labels(tasks, name):
    task = tasks[name]
    text = simplified_definition(task)
    assert task.label_space
    for label in task.label_space:
        assert label in text
    for sentence in sentences(task.definition):
        assert sentence not in text
    assert text.startswith("Answer with one of: ")
    simple = simplified_task(task)
    assert simple.definition == text and task.definition != text
    assert simple.metadata["perturbations"][-1]["original_definition"] == task.definition


@needs_superni
def test_simplified_definition_of_generation_task_uses_output_description(tasks):
    task = tasks[GENERATION]
    assert task.label_space is None
    description = "Generate a title for the article."
    assert simplified_definition(task, output_description=description) == description
    # Without a description (metadata or argument) there is nothing to keep.
    bare = Task(name=task.name, type=task.type, instances=task.instances, definition=task.definition)
    with pytest.raises(HeedfulError, match=GENERATION):
        simplified_definition(bare)
    # With the label-space file's description in metadata, that sentence alone is kept.
    text = simplified_definition(task)
    assert text.rstrip(".") in task.definition


@needs_superni
def test_label_space_from_train_split(tasks):
    for name in CLASSIFICATION:
        inferred = label_space_from_task(tasks[name])
        assert inferred is not None and set(inferred) <= set(tasks[name].label_space)
    assert label_space_from_task(tasks[GENERATION]) is None


# --- delusive demonstrations -----------------------------------------------------------


@needs_superni
@pytest.mark.parametrize("rate", [1.0, 0.5])
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_delusive_demonstrations_wrong_labels(tasks, name, rate):
    task = tasks[name]
    out = delusive_demonstrations(task, rate=rate, seed=3)
    n = len(task.positive_examples)
    altered = out.metadata["perturbations"][-1]["altered"]
    assert len(altered) == int(rate * n + 0.5)
    labels = {normalize_answer(label) for label in task.label_space}
    for i, (old, new) in enumerate(zip(task.positive_examples, out.positive_examples)):
        assert new.input == old.input
        if i in altered:
            assert normalize_answer(new.output) != normalize_answer(old.output)
            assert normalize_answer(new.output) in labels
        else:
            assert new == old
    assert delusive_demonstrations(task, rate=rate, seed=3) == out  # same seed, same task
    assert task.positive_examples != out.positive_examples or n == 0


@needs_superni
def test_delusive_demonstrations_generation_swaps_outputs(tasks):
    task = tasks[GENERATION]
    out = delusive_demonstrations(task, rate=1.0, seed=0)
    assert out.metadata["perturbations"][-1]["mode"] == "swap_outputs"
    old_outputs = [d.output for d in task.positive_examples]
    new_outputs = [d.output for d in out.positive_examples]
    assert sorted(new_outputs) == sorted(old_outputs)
    assert all(a != b for a, b in zip(old_outputs, new_outputs))


def test_delusive_needs_two_distinct_outputs_to_swap():
    task = Task(
        name="t",
        type=TaskType.GENERATION,
        instances=[],
        positive_examples=(Demonstration("a", "x"), Demonstration("b", "x")),
    )
    with pytest.raises(HeedfulError, match="swapping outputs"):
        delusive_demonstrations(task, seed=0)


# --- surface noise ---------------------------------------------------------------------


@needs_collection
@pytest.mark.parametrize("noise", sorted(NOISE))
def test_noise_preserves_placeholders_and_is_seeded(bbl, noise):
    fn = NOISE[noise]
    changed = 0
    for inst in bbl[::7]:
        out = fn(inst.template, 0.3, 11)
        assert placeholders(out) == placeholders(inst.template), inst.template
        assert fn(inst.template, 0.3, 11) == out
        changed += out != inst.template
    assert changed > 0.8 * len(bbl[::7])


def test_drop_words_count_and_braces():
    template = "Read {{this}} text carefully and answer.\nQ: {input}\nA:"
    out = drop_words(template, 0.5, 0)
    words_before = "Read {this} text carefully and answer. Q: A:".split()
    literal_after = out.replace("{input}", " ").replace("{{", "{").replace("}}", "}")
    assert len(literal_after.split()) == len(words_before) - round(0.5 * len(words_before))
    assert placeholders(out) == ["input"]
    assert drop_words(template, 0.0, 0) == template
    assert drop_words("{input}", 1.0, 0) == "{input}"  # no literal words: nothing to drop


def test_shuffle_words_permutes_selected_words():
    template = "one two three four five six seven eight {input}"
    out = shuffle_words(template, 1.0, 5)
    assert sorted(out.split()) == sorted(template.split())
    moved = [a != b for a, b in zip(out.split(), template.split())]
    assert sum(moved) == 8  # a cyclic permutation moves every chosen word


def test_char_typos_are_single_keyboard_edits():
    template = "Classify the sentiment of the review below {input}"
    out = char_typos(template, 1.0, 2)
    before, after = template.split(), out.split()
    assert after[-1] == "{input}"
    for a, b in zip(before[:-1], after[:-1]):
        assert a != b
        assert abs(len(a) - len(b)) <= 1
        assert _edit_distance(a, b) <= 2  # a swap is two substitutions
        for ch in set(b) - set(a):
            assert ch.lower() in QWERTY_NEIGHBOURS  # new characters are keyboard letters


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_bad_rate_is_a_user_error():
    with pytest.raises(HeedfulError, match="rate"):
        drop_words("a b", 1.5, 0)


def test_noisy_instruction_provenance():
    inst = Instruction(id="x/1", template="Answer the question.\n{input}", kind="observed", collection="Flan")
    out = noisy_instruction(inst, "char_typos", rate=0.5, seed=9)
    assert out.kind == "char_typos" and out.id != inst.id
    assert out.params == {"source_id": "x/1", "source_kind": "observed", "rate": 0.5, "seed": 9}
    assert out == noisy_instruction(inst, "char_typos", rate=0.5, seed=9)
    with pytest.raises(HeedfulError, match="unknown noise"):
        noisy_instruction(inst, "emoji", rate=0.5, seed=9)


# --- negation, nonsense, incorrect -----------------------------------------------------


def _loose(text: str) -> str:
    # Sun et al.'s hand edits vary in the separator before the cue (". ", "\n", " ").
    return re.sub(r"[\s.]+", " ", text).strip()


@needs_collection
def test_negation_reproduces_sun_et_al_records(bbl):
    closest = {(i.task, i.id.replace("/Correct/", "/Negation/")): i for i in bbl if i.kind == "closest"}
    styles = {"conceptual_combinations": "sun", "crash_blossom": "sun", "epistemic_reasoning": "opposite"}
    exact = loose = total = 0
    for record in (i for i in bbl if i.kind == "negated"):
        source = closest[(record.task, record.id)]
        out = negated(source, style=styles.get(record.task, "general"))
        assert out.kind == "negated" and out.params["source_id"] == source.id
        assert placeholders(out.template) == placeholders(source.template)
        # Sun et al. write "does not belongs"; heedful writes the grammatical form.
        expected = record.template.replace("does not belongs", "does not belong")
        total += 1
        exact += out.template == expected
        loose += _loose(out.template) == _loose(expected)
    assert total == 44
    # One record (epistemic_reasoning Negation/7) puts the sentence in the first line.
    assert loose == 43
    assert exact >= 30


def test_negation_styles_on_plain_templates():
    qa = Instruction(id="q", template="{question}\n{options}\nA:", kind="closest", collection="Flan")
    assert negated(qa).template == "{question}\n{options}\nThe answer is not:"
    plain = Instruction(id="p", template="Choose the best option.\n{input}", kind="observed", collection="Flan")
    assert negated(plain, style="general").template == "Do not choose the best option.\n{input}"
    assert negated(plain, style="opposite").template == "Choose the best option.\n{input}\n" + OPPOSITE_SENTENCE
    with pytest.raises(HeedfulError, match="negation style"):
        negated(plain, style="reverse")


@needs_collection
def test_nonsense_builtin_matches_released_file():
    released = load_collection(INSTRUCTIONS / "nonsense.jsonl")
    builtin = nonsense_instructions()
    assert [i.template for i in builtin] == [i.template for i in released]
    assert [i.id for i in builtin] == [i.id for i in released]
    assert all(i.kind == "nonsense" and i.task is None for i in builtin)
    # Records of a loaded collection are added once, and only nonsense ones.
    extra = Instruction(id="mine/1", template="Bananas rule.\n{input}", kind="nonsense", collection="mine")
    other = Instruction(id="o", template="Answer.\n{input}", kind="observed", collection="mine")
    merged = nonsense_instructions([*released, extra, other])
    assert len(merged) == 6 and merged[-1] == extra


@needs_collection
def test_incorrect_instruction_comes_from_another_task(bbl):
    observed = [i for i in bbl if i.kind == "observed"]
    own = {i.template for i in observed if i.task == "epistemic_reasoning"}
    picks = {incorrect_instruction("BC", observed, "epistemic_reasoning", seed=s).template for s in range(5)}
    for seed in range(5):
        inst = incorrect_instruction("BC", observed, "epistemic_reasoning", seed=seed)
        assert inst.kind == "incorrect" and inst.task == "epistemic_reasoning"
        assert inst.params["source_task"] != "epistemic_reasoning"
        assert inst.task_type == "BC" and inst.template not in own
        assert inst == incorrect_instruction("BC", list(reversed(observed)), "epistemic_reasoning", seed=seed)
    assert len(picks) > 1
    with pytest.raises(HeedfulError, match="no observed instruction"):
        incorrect_instruction("QA", [i for i in observed if i.task == "hindu_knowledge"], "hindu_knowledge", seed=0)
