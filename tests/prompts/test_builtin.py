"""Designer instructions render exactly the task designer's own prompt."""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import replace

import pytest

from heedful.errors import HeedfulError
from heedful.prompts.builtin import builtin_instructions, designer_instruction, mmlu_subject, superni_instruction
from heedful.prompts.collection import load_collection, save_collection
from heedful.prompts.render import render_instruction
from heedful.tasks.types import BigBenchFormat, Instance, Task, TaskType
from shared_data import SHARED_DATA

SHARED = SHARED_DATA
SUPERNI = SHARED / "superni" / "tasks"
MMLU = SHARED / "mmlu" / "test"

needs_bigbench = pytest.mark.skipif(
    importlib.util.find_spec("bigbench") is None,
    reason="BIG-bench data missing: pip install --no-deps bigbench==1.0.0",
)


def _in_bigbench_order(instance: Instance) -> Instance:
    """The instance with its options in the order BIG-bench itself shows them."""
    from heedful.prompts.bigbench import bigbench_choice_order

    options = tuple(bigbench_choice_order(instance.options))
    return replace(instance, options=options, gold=options.index(instance.options[instance.gold]))


@needs_bigbench
def test_bigbench_designer_matches_bigbench_prompt_on_bbl_tasks():
    from heedful.prompts.bigbench import render_bigbench
    from heedful.tasks.bigbench import BBL_SUN14, load_bigbench

    checked = appended = 0
    for name in BBL_SUN14:
        for task in load_bigbench(name):
            designer = designer_instruction(task)
            assert (designer.kind, designer.collection, designer.task) == ("designer", "builtin", task.name)
            for instance in task.instances[:25]:
                # BIG-bench shows the choices sorted and permuted with its own seed; the
                # designer record shows the instance's order, so compare in BIG-bench's.
                shown = _in_bigbench_order(instance)
                out = render_instruction(designer, task, shown)
                assert out.prompt == render_bigbench(task, shown)
                assert out.choices == shown.options and out.references == (shown.options[shown.gold],)
                if not task.bigbench_format.append_choices_to_input:
                    # Choices not shown: the prompt does not depend on the option order.
                    assert render_instruction(designer, task, instance).prompt == out.prompt
                appended += task.bigbench_format.append_choices_to_input
                checked += 1
    assert checked > 500 and 0 < appended < checked


def test_bigbench_designer_escapes_braces_in_prefixes():
    fmt = BigBenchFormat(task_prefix="Fill {x}.\n", example_input_prefix="\nQ{}: ", example_output_prefix="\nA}: ",
                         choice_prefix="\n {choice}: ", append_choices_to_input=True)
    example = Instance(id="0", input="a {b} c", references=("no",), options=("yes", "no"), gold=1)
    task = Task(name="braces", type=TaskType.MULTIPLE_CHOICE, instances=[example], bigbench_format=fmt)
    out = render_instruction(designer_instruction(task), task, example)
    assert out.prompt == "Fill {x}.\n\nQ{}: a {b} c\n {choice}: yes\n {choice}: no\nA}: "
    assert out.references == ("no",)


def test_bigbench_designer_for_a_generative_task_has_no_options():
    example = Instance(id="0", input="2+2", references=("4",))
    task = Task(name="gen", type=TaskType.GENERATION, instances=[example], bigbench_format=BigBenchFormat())
    out = render_instruction(designer_instruction(task), task, example)
    assert (out.prompt, out.references, out.choices) == ("\nQ: 2+2\nA: ", ("4",), None)


def test_superni_designer_matches_the_def_encoding():
    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI tasks not found under {SUPERNI}")
    from heedful.prompts.superni import encode_superni
    from heedful.tasks.superni import load_superni_task

    files = sorted(SUPERNI.glob("*.json"))[::6]
    assert len(files) >= 15
    for file in files:
        task = load_superni_task(file)
        designer = designer_instruction(task)
        odd = [" padded input  ", "ends with a question?", "no stop", "", "braces {input} {{x}}\n"]
        inputs = [inst.input for inst in task.instances[:20]] + odd
        for text in inputs:
            instance = Instance(id="x", input=text, references=("out",))
            out = render_instruction(designer, task, instance)
            assert out.prompt == encode_superni(task, text, "def")
            assert out.references == ("out",)


def test_every_superni_encoding_as_an_instruction_matches_the_encoder():
    if not SUPERNI.is_dir():
        pytest.skip(f"SuperNI tasks not found under {SUPERNI}")
    from heedful.prompts.superni import SUPERNI_ENCODINGS, encode_superni
    from heedful.tasks.superni import load_superni_task

    for file in sorted(SUPERNI.glob("*.json"))[::20]:
        task = load_superni_task(file)
        for encoding in SUPERNI_ENCODINGS:
            instruction = superni_instruction(task, encoding)
            assert (instruction.id, instruction.collection) == (f"superni/{encoding}", "superni")
            for text in [inst.input for inst in task.instances[:5]] + ["  x {y} ", "why?"]:
                instance = Instance(id="x", input=text, references=("out",))
                assert render_instruction(instruction, task, instance).prompt == encode_superni(task, text, encoding)
    with pytest.raises(HeedfulError, match="unknown SuperNI encoding"):
        superni_instruction(task, "def+pos9")


def _mmlu_task(subject: str, rows: int = 5) -> Task:
    path = MMLU / f"{subject}_test.csv"
    if not path.is_file():
        pytest.skip(f"MMLU data not found: {path}")
    instances = []
    with path.open(newline="", encoding="utf-8") as handle:
        for n, (question, *options, answer) in enumerate(csv.reader(handle)):
            if n == rows:
                break
            gold = "ABCD".index(answer)
            instances.append(Instance(id=str(n), input=question, references=(options[gold],), options=tuple(options), gold=gold))
    return Task(name=f"mmlu:{subject}", type=TaskType.MULTIPLE_CHOICE, instances=instances, source="mmlu")


def test_mmlu_designer_is_the_lm_eval_harness_prompt():
    task = _mmlu_task("abstract_algebra")
    out = render_instruction(designer_instruction(task), task, task.instances[0])
    # lm-evaluation-harness mmlu/default: description + doc_to_text, choices " A".." D".
    assert out.prompt == (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
        "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
    )
    assert (out.references, out.choices, out.gold) == (("B",), ("A", "B", "C", "D"), 1)


def test_mmlu_designer_strips_the_question_and_names_the_subject():
    task = _mmlu_task("high_school_us_history", rows=3)
    assert mmlu_subject(task) == "high school us history"
    assert mmlu_subject(replace(task, name="mmlu", metadata={"subject": "college_physics"})) == "college physics"
    designer = designer_instruction(task)
    for instance in task.instances:
        padded = replace(instance, input="\n " + instance.input + "  \n")
        expected = (
            "The following are multiple choice questions (with answers) about high school us history.\n\n"
            + instance.input.strip()
            + "".join(f"\n{letter}. {text}" for letter, text in zip("ABCD", instance.options))
            + "\nAnswer:"
        )
        assert render_instruction(designer, task, padded).prompt == expected


def test_other_tasks_use_definition_then_input():
    example = Instance(id="1", input="Is {this} fine?", references=("yes",))
    task = Task(name="mine", type=TaskType.GENERATION, instances=[example], definition="  Answer {yes} or no. ", source="jsonl")
    out = render_instruction(designer_instruction(task), task, example)
    assert out.prompt == "Answer {yes} or no.\n\nIs {this} fine?"
    bare = replace(task, definition="")
    assert render_instruction(designer_instruction(bare), bare, example).prompt == "Is {this} fine?"


def test_builtin_instructions_is_the_designer_and_saves_as_a_valid_record(tmp_path):
    tasks = [
        _mmlu_task("anatomy", rows=1),
        Task(name="mine", type=TaskType.GENERATION, instances=[], definition="Do {it}."),
        Task(name="bb", type=TaskType.MULTIPLE_CHOICE, instances=[], bigbench_format=BigBenchFormat(task_prefix="{p}")),
    ]
    if SUPERNI.is_dir():
        from heedful.tasks.superni import load_superni_task

        tasks.append(load_superni_task(sorted(SUPERNI.glob("*.json"))[0]))
    designers = []
    for task in tasks:
        [only] = builtin_instructions(task)
        assert only == designer_instruction(task)
        designers.append(only)
    save_collection(designers, tmp_path / "designers.jsonl")
    loaded = load_collection(tmp_path / "designers.jsonl")
    assert [replace(i, origin="") for i in loaded] == [replace(i, origin="") for i in designers]
