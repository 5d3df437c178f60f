"""Perturbed (instruction, task) variants on real SuperNI tasks, checked against the encoder."""

from __future__ import annotations

from dataclasses import replace

import pytest

from heedful.errors import HeedfulError
from heedful.perturbations.label_space import load_label_space_file
from heedful.perturbations.variants import PERTURBATIONS, parse_perturbation, perturbed_variants
from heedful.prompts.instruction import Instruction
from heedful.prompts.render import render_instruction
from heedful.prompts.sources import InstructionSources
from heedful.prompts.superni import encode_superni
from heedful.tasks.normalize import normalize_answer
from heedful.tasks.superni import load_superni
from shared_data import SHARED_DATA

SUPERNI = SHARED_DATA / "superni"
TASK = "task1529_scitail1.1_classification"


@pytest.fixture(scope="module")
def data():
    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI reference data not found at {SUPERNI}")
    task = load_superni(SUPERNI / "tasks" / f"{TASK}.json")[0]
    return task, load_label_space_file(SUPERNI / "label_space.json")


def _variants(task, spec, names, label_spaces, seed=0):
    instructions = InstructionSources.parse(spec).for_task(task)
    return perturbed_variants(task, instructions, names, seed=seed, label_spaces=label_spaces)


def test_simplified_is_the_tk_instruct_encoding_with_the_output_space_definition(data):
    task, label_spaces = data
    [(variant, variant_task)] = _variants(task, "superni:def+pos2", ["simplified"], label_spaces)
    labels = label_spaces[TASK][0]
    assert variant.kind == "simplified" and variant.id == "superni/def+pos2+simplified"
    inst = task.split("test")[3]
    prompt = render_instruction(variant, variant_task, inst).prompt
    expected = encode_superni(replace(task, definition=f"Answer with one of: {', '.join(labels)}."), inst.input, "def+pos2")
    assert prompt == expected
    assert task.definition not in prompt
    assert variant.params["label_source"] == "file" and variant.params["seed"] == 0


def test_delusive_demonstrations_all_wrong_and_reproducible(data):
    task, label_spaces = data
    [(a, ta)] = _variants(task, "superni:def+pos2", ["delusive"], label_spaces, seed=3)
    [(b, _)] = _variants(task, "superni:def+pos2", ["delusive"], label_spaces, seed=3)
    assert a == b
    inst = task.split("test")[0]
    prompt = render_instruction(a, ta, inst).prompt
    assert prompt == encode_superni(ta, inst.input, "def+pos2")
    assert task.definition in prompt
    for old, new in zip(task.positive_examples[:2], ta.positive_examples[:2]):
        assert new.input == old.input
        assert normalize_answer(new.output) != normalize_answer(old.output)
        assert f"Output: {new.output}" in prompt


def test_delusive_skips_encodings_without_demonstrations(data, caplog):
    task, label_spaces = data
    assert _variants(task, "superni:def", ["delusive"], label_spaces) == []
    assert "needs an encoding with demonstrations" in caplog.text


def test_none_is_the_superni_none_encoding(data):
    task, label_spaces = data
    [(variant, vt)] = _variants(task, "superni:def+pos2", ["none"], label_spaces)
    inst = task.split("test")[1]
    assert render_instruction(variant, vt, inst).prompt == encode_superni(task, inst.input, "none")
    assert variant.kind == "none"


def test_none_for_a_plain_template_keeps_its_options():
    from heedful.prompts.instruction import OptionsSpec
    from heedful.tasks.types import Instance, Task, TaskType

    task = Task(name="t", type=TaskType.MULTIPLE_CHOICE, instances=[Instance("0", "2+2?", ("4",), ("3", "4"), 1)])
    base = Instruction(
        id="mine", template="Solve it.\n{input}{options}\nA:", kind="designer", collection="c",
        options=OptionsSpec(field="options", item="\n- {text}"),
    )
    [(variant, _)] = perturbed_variants(task, [base], ["none"], seed=0)
    assert render_instruction(variant, task, task.instances[0]).prompt == "2+2?\n- 3\n- 4"


def test_noise_and_negation_change_only_the_definition(data):
    task, label_spaces = data
    pairs = _variants(task, "superni:def+pos2", ["drop_words:0.3", "negated", "char_typos"], label_spaces)
    assert [v.kind for v, _ in pairs] == ["drop_words", "negated", "char_typos"]
    inst = task.split("test")[0]
    for variant, vt in pairs:
        assert vt.definition != task.definition
        assert variant.params["definition"] == vt.definition
        assert render_instruction(variant, vt, inst).prompt == encode_superni(vt, inst.input, "def+pos2")
    assert pairs[0][0].params["rate"] == 0.3
    assert len(pairs[0][1].definition.split()) < len(task.definition.split())


def test_nonsense_gives_the_five_builtin_instructions(data):
    task, label_spaces = data
    pairs = _variants(task, "superni:def", ["nonsense"], label_spaces)
    assert [v.id for v, _ in pairs] == [f"superni/def+nonsense/{i}" for i in range(1, 6)]
    inst = task.split("test")[0]
    assert all(render_instruction(v, t, inst).prompt.endswith(inst.input) for v, t in pairs)


def test_perturbs_designer_instructions_only_when_present(data):
    task, label_spaces = data
    instructions = InstructionSources.parse("designer,superni:none").for_task(task)
    pairs = perturbed_variants(task, instructions, ["simplified"], seed=0, label_spaces=label_spaces)
    assert [v.params["base_id"] for v, _ in pairs] == ["designer"]


def test_simplified_without_label_space_or_description_names_the_task(data):
    task, _ = data
    open_task = replace(task, label_space=None, instances=task.split("test")[:1], metadata={})
    with pytest.raises(HeedfulError, match=TASK):
        _variants(open_task, "superni:def", ["simplified"], None)


def test_incorrect_and_closest_skip_without_observed_pool(data, caplog):
    task, label_spaces = data
    assert _variants(task, "superni:def", ["incorrect", "paraphrase"], label_spaces) == []
    assert "incorrect" in caplog.text and "paraphrase" in caplog.text


def test_incorrect_uses_an_observed_instruction_of_another_task(data):
    task, label_spaces = data
    other = Instruction(id="o1", template="Q: {input}\nA:", kind="observed", collection="c", task="other", task_type="QA")
    base = InstructionSources.parse("superni:def").for_task(task)
    [(variant, _)] = perturbed_variants(task, base, ["incorrect"], seed=0, observed_pool=[other])
    assert variant.template == other.template and variant.kind == "incorrect" and variant.task == TASK


def test_closest_is_another_tasks_observed_instruction_and_negated_closest_negates_it(data):
    """Sun et al. §4.3: closest comes from the most similar *other* task; negated is that one negated."""
    pytest.importorskip("sentence_transformers", reason="closest needs sentence embeddings")
    task, _ = data
    base = Instruction(id="d", template="Does the premise entail the hypothesis? {input}\nAnswer:", kind="designer",
                       collection="c", task=TASK)
    own = Instruction(id="own", template="Does the premise entail the hypothesis? {input}\nA:", kind="observed",
                      collection="c", task=TASK)
    near = Instruction(id="near", template="Is the hypothesis entailed by the premise? {input}\nAnswer:",
                       kind="observed", collection="c", task="other_nli", task_type="BC")
    far = Instruction(id="far", template="Translate this sentence into French. {input}", kind="observed",
                      collection="c", task="translation", task_type="QA")
    pairs = perturbed_variants(task, [base], ["closest", "negated_closest"], seed=0, observed_pool=[own, near, far])
    [(closest, _), (negation, _)] = pairs
    assert closest.template == near.template and closest.kind == "closest" and closest.params["source_id"] == "near"
    assert closest.task == TASK  # evaluated as this task's instruction
    assert negation.kind == "negated_closest" and negation.template.endswith("The answer is not:")
    assert negation.params["source_id"] == "near"
    assert perturbed_variants(task, [base], ["closest"], seed=0, observed_pool=[own]) == []  # only its own: none


def test_unknown_perturbation_lists_valid_names():
    with pytest.raises(HeedfulError, match="simplified") as err:
        parse_perturbation("simplify")
    assert all(name in str(err.value) for name in PERTURBATIONS)
    with pytest.raises(HeedfulError, match="rate"):
        parse_perturbation("drop_words:2")
    assert parse_perturbation("char_typos").rate == 0.1
