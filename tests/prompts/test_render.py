"""Rendering instruction records on real BIG-bench Lite and MMLU examples.

Every record of the released collections is rendered on real examples of the tasks the
source release used it for (BIG-bench data from the ``bigbench`` package, read by
heedful's loader with options in file order, as FORMAT.md's identity assumes), and a few
prompts are checked byte for byte against strings derived by hand from FORMAT.md.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import defaultdict
from dataclasses import replace

import pytest

from heedful.errors import HeedfulError, PatternTimeoutError
from heedful.prompts.collection import load_collection
from heedful.prompts.instruction import Instruction, OptionsSpec
from heedful.prompts.render import ALPACA_PREFIX, ALPACA_SUFFIX, render_instruction
from heedful.tasks.types import Instance, Task, TaskType
from shared_data import SHARED_DATA

SHARED = SHARED_DATA
COLLECTIONS = SHARED / "instructions"
MMLU = SHARED / "mmlu" / "test"
PER_TASK = 150  # examples rendered per (sub)task: all of them when the task has fewer
_ONLY_SUBTASK = re.compile(r"the source evaluates the (\w+) subtask only")


def _collection(name: str) -> list[Instruction]:
    path = COLLECTIONS / name
    if not path.is_file():
        pytest.skip(f"reference collection {path} not found")
    return load_collection(path)


def _bigbench_available() -> bool:
    spec = importlib.util.find_spec("bigbench")
    return spec is not None and bool(spec.submodule_search_locations)


needs_bigbench = pytest.mark.skipif(
    not _bigbench_available(), reason="BIG-bench data missing: pip install --no-deps bigbench==1.0.0"
)


def _spread(items: list, n: int) -> list:
    """``n`` items evenly spread over ``items`` (all of them if there are fewer)."""
    if len(items) <= n:
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


@pytest.fixture(scope="module")
def bbl() -> list[Instruction]:
    return _collection("bbl.jsonl")


@pytest.fixture(scope="module")
def bbl_tasks(bbl) -> dict[str, list[Task]]:
    """The (sub)tasks each BBL task's records were written for, options in file order."""
    if not _bigbench_available():
        pytest.skip("BIG-bench data missing: pip install --no-deps bigbench==1.0.0")
    from heedful.tasks.bigbench import load_bigbench

    only: dict[str, str] = {}
    for inst in bbl:
        for note in inst.notes:
            if m := _ONLY_SUBTASK.fullmatch(note):
                only[inst.task] = m.group(1)
    out: dict[str, list[Task]] = {}
    for name in dict.fromkeys(i.task for i in bbl):
        wanted = f"{name}:{only[name]}" if name in only else name
        tasks = load_bigbench(wanted, shuffle_options=False)
        out[name] = [replace(t, instances=_spread(t.instances, PER_TASK)) for t in tasks]
    return out


def _choice_letters_needed(inst: Instruction) -> int:
    """How many options a choice-field template needs (choiceD -> 4), 0 without choice fields."""
    if inst.choice_fields != "choice{letter}":
        return 0
    letters = re.findall(r"(?<!\{)\{choice([A-Z])\}", inst.template)
    return max((ord(c) - ord("A") + 1 for c in letters), default=0)


def _render_all(instructions, tasks):
    """Render every pair; returns the set of (task, id, instance) that failed."""
    failed = set()
    for task in tasks:
        for inst in instructions:
            for example in task.instances:
                try:
                    out = render_instruction(inst, task, example)
                except HeedfulError as err:
                    assert inst.id in str(err) and f"instance '{example.id}'" in str(err)
                    failed.add((task.name, inst.id, example.id))
                    continue
                assert out.choices is not None and out.references == (out.choices[out.gold],)
                assert len(out.choices) == len(inst.fixed_options or example.options)
    return failed


@needs_bigbench
def test_every_bbl_record_renders_on_its_tasks_real_examples(bbl, bbl_tasks):
    by_task = defaultdict(list)
    for inst in bbl:
        by_task[inst.task].append(inst)
    failed, expected = set(), set()
    for name, records in by_task.items():
        failed |= _render_all(records, bbl_tasks[name])
        for task in bbl_tasks[name]:
            for inst in records:
                for ex in task.instances:
                    # FORMAT.md: "a placeholder without an option is an error".
                    if _choice_letters_needed(inst) > len(inst.fixed_options or ex.options):
                        expected.add((task.name, inst.id, ex.id))
    assert failed == expected
    # The only misfits are the records the source itself could not render on
    # logical_sequence's one 3-option example (it unpacks exactly four options).
    assert {t for t, _, _ in failed} == {"logical_sequence"}
    noted = {
        i.id for i in by_task["logical_sequence"]
        if any("unpacks exactly 4 options" in n for n in i.notes)
    }
    assert noted and noted <= {i for _, i, _ in failed}


@needs_bigbench
def test_task_independent_records_render_on_every_matching_bbl_task(bbl, bbl_tasks):
    generic = _collection("observed_generic.jsonl")
    nonsense = _collection("nonsense.jsonl")
    task_type = {i.task: i.task_type for i in bbl}
    # No generic record needs a particular input shape, so the source paired each with
    # every task of its task type (DROPPED.md lists the ones that did need one).
    assert all(i.extract is None for i in generic + nonsense)
    for name, tasks in bbl_tasks.items():
        matching = [i for i in generic if i.task_type == task_type[name]]
        # Nonsense records are task-type independent (their notes say so): every task.
        assert _render_all(matching + nonsense, tasks) == set()
    covered = {task_type[n] for n in bbl_tasks}
    assert {i.task_type for i in generic} <= covered


def _mmlu_instances(per_subject: int = 4) -> list[Instance]:
    if not MMLU.is_dir():
        pytest.skip(f"MMLU data not found under {MMLU}")
    out = []
    for path in sorted(MMLU.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for n, row in enumerate(csv.reader(handle)):
                if n == per_subject:
                    break
                question, *options, answer = row
                gold = "ABCD".index(answer.strip())
                out.append(Instance(id=f"{path.stem}/{n}", input=question, references=(options[gold],),
                                    options=tuple(options), gold=gold))
    return out


def test_every_mmlu_record_renders_on_real_mmlu_rows():
    records = _collection("mmlu.jsonl")
    instances = _mmlu_instances()
    assert len(instances) >= 200
    task = Task(name="mmlu", type=TaskType.MULTIPLE_CHOICE, instances=instances)
    assert _render_all(records, [task]) == set()
    letter = next(r for r in records if r.answer == "letter" and r.options is None)
    out = render_instruction(letter, task, instances[0])
    assert out.references == ("ABCD"[instances[0].gold],)


WORKED_PROMPT = (
    'You are given a question and some answer options (associated with "A", "B", "C", "D"). '
    "You should choose the correct answer based on commonsense knowledge. Avoid answering questions "
    "based on associations, the set of answers are chosen deliberately to capture common sense beyond "
    "associations. Do not generate anything else apart from one of the following characters: "
    "'A', 'B', 'C', 'D' and only give one answer for each question.\n\n"
    "Which of the following Hindu deities do not belong to the group of three supreme divinities known "
    "as the Trimurti? (A) Vishnu (B) Shiva (C) Indra (D) Brahma "
)


def _record(records, task, rid):
    [inst] = [i for i in records if i.task == task and i.id == rid]
    return inst


def _example(tasks, pred):
    return next(ex for t in tasks for ex in t.instances if pred(ex))


@needs_bigbench
def test_format_worked_example_byte_for_byte(bbl):
    from heedful.tasks.bigbench import load_bigbench

    [task] = load_bigbench("hindu_knowledge", shuffle_options=False)
    example = _example([task], lambda ex: ex.options == ("Vishnu", "Shiva", "Indra", "Brahma"))
    out = render_instruction(_record(bbl, "hindu_knowledge", "NIV2/QA/1"), task, example)
    assert out.prompt == WORKED_PROMPT
    assert out.references == ("C",)
    assert (out.choices, out.gold) == (("A", "B", "C", "D"), 2)
    assert (out.task, out.instance_id) == ("hindu_knowledge", example.id)


@needs_bigbench
def test_extract_and_label_map_example(bbl):
    """strange_stories FLAN/BC/1: two extract groups, label_map yes->Yes (derived by hand)."""
    from heedful.tasks.bigbench import load_bigbench

    [task] = load_bigbench("strange_stories:boolean", shuffle_options=False)
    example = task.instances[0]
    story = (
        "At school today John was not present. He was away ill. All the rest of Ben's class were at "
        'school, though. When Ben got home after school his mother asked him, "Was everyone in your '
        'class at school today?" Ben answers, "Yes, Mummy".'
    )
    assert example.input == story + "\nQ: Is it false what Ben said?"
    out = render_instruction(_record(bbl, "strange_stories", "FLAN/BC/1"), task, example)
    assert out.prompt == (
        story + '\n\nQuestion: "Q: Is it false what Ben said?"\n\nResponse: "Yes"\n\n'
        "Does the response correctly answer the question?\n\n"
    )
    assert example.options == ("yes", "no") and example.gold == 0
    assert (out.references, out.choices, out.gold) == (("Yes",), ("Yes", "No"), 0)


@needs_bigbench
def test_alpaca_wrapper_example(bbl):
    """strategyqa Alpaca/BC/1: Alpaca wrapper around the template, label_map Yes->True."""
    from heedful.tasks.bigbench import load_bigbench

    [task] = load_bigbench("strategyqa", shuffle_options=False)
    example = task.instances[0]
    assert example.input == "Is it common to see frost during some college commencements?"
    out = render_instruction(_record(bbl, "strategyqa", "Alpaca/BC/1"), task, example)
    assert out.prompt == (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
        "Determine if this claim is true or false:\n\n### Input:\n"
        "Question: Is it common to see frost during some college commencements?. Answer: Yes"
        "\n\n### Response:"
    )
    assert example.options[example.gold] == "Yes"
    assert (out.references, out.choices) == (("True",), ("True", "False"))


@needs_bigbench
def test_fixed_options_replace_the_examples_options(bbl):
    from heedful.tasks.bigbench import load_bigbench

    [task] = load_bigbench("logic_grid_puzzle", shuffle_options=False)
    record = _record(bbl, "logic_grid_puzzle", "BBL/Default/1")
    example = _example([task], lambda ex: len(ex.options) == 2)
    out = render_instruction(record, task, example)
    assert out.prompt.endswith("\n(A) 1\n(B) 2\n(C) 3\n(D) 4\n(E) 5")
    assert out.choices == ("A", "B", "C", "D", "E")
    assert out.references == ("ABCDE"[int(example.options[example.gold]) - 1],)


@needs_bigbench
def test_shuffled_options_are_shown_in_instance_order(bbl):
    from heedful.tasks.bigbench import load_bigbench

    [task] = load_bigbench("hindu_knowledge", seed=1)
    record = _record(bbl, "hindu_knowledge", "NIV2/QA/1")
    moved = [ex for ex in task.instances if ex.option_order != tuple(range(len(ex.options)))]
    assert moved
    for example in moved[:20]:
        out = render_instruction(record, task, example)
        shown = "".join(f"({'ABCDEFGH'[i]}) {text} " for i, text in enumerate(example.options))
        assert out.prompt.endswith(shown)
        assert out.references == ("ABCDEFGH"[example.gold],) and out.gold == example.gold


# --- the rules on small synthetic records ---------------------------------------------

TASK = Task(name="toy", type=TaskType.MULTIPLE_CHOICE, instances=[])
EX = Instance(id="e1", input="Premise: sky. Hypothesis: blue?", references=("yes",), options=("yes", "no", "maybe"), gold=0)


def _inst(template: str, **kw) -> Instruction:
    return Instruction(id="T/1", template=template, kind="unobserved", collection="test", origin="t.jsonl:7", **kw)


def test_options_field_uses_item_sep_prefix_suffix_and_letters():
    spec = OptionsSpec(field="opts", item="{index}) {text} [{letter}]", sep="; ", prefix="<", suffix=">", letters="xyz")
    out = render_instruction(_inst("{input} {opts}", options=spec, answer="letter"), TASK, EX)
    assert out.prompt == "Premise: sky. Hypothesis: blue? <1) yes [x]; 2) no [y]; 3) maybe [z]>"
    assert (out.references, out.choices, out.gold) == (("x",), ("x", "y", "z"), 0)


def test_choice_fields_and_computed_fields():
    inst = _inst("{choice1}|{choice2}|{choice3} {n} {w} {l}", choice_fields="choice{index}",
                 extra_fields={"n": "n_options", "w": "n_options_word", "l": "option_letters"})
    out = render_instruction(inst, TASK, EX)
    assert out.prompt == "yes|no|maybe 3 three 'A', 'B', 'C'"
    assert (out.references, out.choices) == (("yes",), ("yes", "no", "maybe"))


def test_options_without_placeholder_are_not_shown():
    out = render_instruction(_inst("{input} A. {choiceA}", choice_fields="choice{letter}"), TASK, EX)
    assert out.prompt == "Premise: sky. Hypothesis: blue? A. yes"


def test_extract_groups_become_fields_and_unmatched_optional_groups_do_not():
    inst = _inst("[{p}] [{h}]", extract=r"Premise: (?P<p>.*?)\. Hypothesis: (?P<h>.*)(?P<tail>!)?")
    assert render_instruction(inst, TASK, EX).prompt == "[sky] [blue?]"
    with pytest.raises(HeedfulError, match=r"placeholder \{tail\} has no value"):
        render_instruction(_inst("{tail}", extract=inst.extract), TASK, EX)


def test_input_period_follows_tk_instruct_punctuation_rule():
    inst = _inst("In: {input}{dot}", extra_fields={"dot": "input_period"})
    assert render_instruction(inst, TASK, EX).prompt == "In: Premise: sky. Hypothesis: blue?"
    plain = replace(EX, input="no stop", options=None, gold=None)
    assert render_instruction(inst, TASK, plain).prompt == "In: no stop."


@pytest.mark.parametrize(
    ("inst", "example", "reason"),
    [
        (_inst("{x}", extract=r"Question: (?P<x>.*)"), EX, "no match for 'extract'"),
        (_inst("{o}", options=OptionsSpec(field="o", item="{letter}", letters="ab")), EX, "3 options but only 2 letters"),
        (_inst("{choiceD}", choice_fields="choice{letter}"), EX, r"placeholder \{choiceD\} has no value .*3 options"),
        (_inst("{input}", label_map={"no": "N"}), EX, "gold label 'yes' is missing from label_map"),
        (_inst("{input}", label_map={"yes": "Y", "no": "N"}), EX, "option 'maybe' is missing from label_map"),
        (_inst("{input}", answer="letter", fixed_options=("1", "2")), EX, "gold option 'yes' is not among the fixed options"),
        (_inst("{input} {o}", options=OptionsSpec(field="o", item="{text}")), replace(EX, options=None, gold=None),
         "shows options but the instance has none"),
        (_inst("{input}", answer="letter"), replace(EX, options=None, gold=None), "answers with a letter"),
        (_inst("{input}"), replace(EX, gold=None), "no valid gold index"),
    ],
)
def test_a_record_that_does_not_fit_names_instruction_origin_and_instance(inst, example, reason):
    with pytest.raises(HeedfulError) as info:
        render_instruction(inst, TASK, example)
    message = str(info.value)
    assert message.startswith("instruction 'T/1' (t.jsonl:7) cannot render instance 'e1' of task 'toy': ")
    assert re.search(reason, message)


def test_open_ended_instance_keeps_its_references_mapped():
    gen = Instance(id="g", input="Say hi", references=("hi", "hello"))
    out = render_instruction(_inst("{input}", wrapper="alpaca"), TASK, gen)
    assert out.prompt == ALPACA_PREFIX + "Say hi" + ALPACA_SUFFIX
    assert (out.references, out.choices, out.gold) == (("hi", "hello"), None, None)
    mapped = render_instruction(_inst("{input}", label_map={"hi": "H", "hello": "HE"}), TASK, gen)
    assert mapped.references == ("H", "HE")


def test_an_extract_pattern_that_backtracks_past_its_time_limit_is_fatal_not_unfit() -> None:
    """A hostile pattern is never skipped as 'does not fit' (--on-unfit skip catches HeedfulError only)."""
    inst = replace(_inst("{x}", extract=r"(?P<x>(a|aa)*)[bc]"), origin="evil.jsonl:7")
    with pytest.raises(PatternTimeoutError, match=r"^evil\.jsonl:7: instruction 'T/1': its 'extract' pattern ran over") as err:
        render_instruction(inst, TASK, replace(EX, input="a" * 60))
    assert not isinstance(err.value, HeedfulError)
