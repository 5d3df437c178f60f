"""BIG-bench zero-shot prompts against a transcription of BIG-bench's json_task.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from heedful.errors import HeedfulError
from heedful.prompts.bigbench import bigbench_choice_order, render_bigbench
from heedful.tasks.bigbench import bbl_tasks, bigbench_root, load_bigbench
from heedful.tasks.types import Instance, Task, TaskType

try:
    ROOT: Path | None = bigbench_root()
except HeedfulError:
    ROOT = None

pytestmark = pytest.mark.skipif(ROOT is None, reason="bigbench package not installed (pip install --no-deps bigbench)")

PER_TASK = 300  # examples compared per task, to keep the test fast


def reference_default_format_fn(sample, input_prefix, output_prefix, choice_prefix, random_seed, append_choices_to_input=True):
    """google/BIG-bench bigbench/api/json_task.py ``default_format_fn``, transcribed."""

    def input_format(text):
        return input_prefix + text

    rng = np.random.RandomState(seed=random_seed)

    if "target_scores" in sample:
        choice_dic = sample["target_scores"]
        if append_choices_to_input:
            permuted_choices = rng.permutation(sorted(list(choice_dic.keys())))
            sample["input"] = sample["input"] + choice_prefix + choice_prefix.join(permuted_choices)
        sample["choice"] = list(sample["target_scores"].keys())

    sample["input"] = input_format(sample["input"]) + output_prefix
    return sample


def reference_zero_shot_prompt(task_data: dict, sample: dict, random_seed: int = 42) -> str:
    """JsonTask.load_and_process_json's settings + evaluate_fixed_shot's ``task_prefix + input``."""
    input_prefix = task_data.get("example_input_prefix", "\nQ: ")
    output_prefix = task_data.get("example_output_prefix", "\nA: ")
    choice_prefix = task_data.get("choice_prefix", "\n  choice: ")
    append_choices_to_input = task_data.get("append_choices_to_input", True)
    formatted = reference_default_format_fn(
        copy.deepcopy(sample),
        input_prefix=input_prefix,
        output_prefix=output_prefix,
        choice_prefix=choice_prefix,
        random_seed=random_seed,
        append_choices_to_input=append_choices_to_input,
    )
    task_prefix = str(task_data.get("task_prefix", ""))
    return task_prefix + formatted["input"]


@pytest.mark.parametrize("name", bbl_tasks())
def test_prompts_match_reference_on_bbl(name):
    for task in load_bigbench(name, seed=3):
        raw = json.loads(Path(task.metadata["path"]).read_text(encoding="utf-8"))
        for inst in task.instances[:PER_TASK]:
            assert render_bigbench(task, inst) == reference_zero_shot_prompt(raw, raw["examples"][int(inst.id)])


def test_prompt_does_not_depend_on_option_shuffle():
    (shuffled,) = load_bigbench("known_unknowns", seed=5)
    (plain,) = load_bigbench("known_unknowns", shuffle_options=False)
    for a, b in zip(shuffled.instances, plain.instances):
        assert render_bigbench(shuffled, a) == render_bigbench(plain, b)


def test_literal_hindu_knowledge_example():
    (task,) = load_bigbench("hindu_knowledge")
    inst = next(i for i in task.instances if i.id == "0")
    assert render_bigbench(task, inst) == (
        "\nQ: Which of the following Hindu deities do not belong to the group of three supreme "
        "divinities known as the Trimurti?"
        "\n  choice: Indra\n  choice: Vishnu\n  choice: Brahma\n  choice: Shiva"
        "\nA: "
    )


def test_literal_winowhy_example_puts_task_prefix_first_and_no_choices():
    (task,) = load_bigbench("winowhy")
    inst = next(i for i in task.instances if i.id == "0")
    assert render_bigbench(task, inst) == (
        "Please answer the following questions about which words certain pronouns refer to.\n"
        "\nThe city councilmen refused the demonstrators a permit because they feared violence. "
        "The 'they' refers to the city councilmen because city councilmen are administrative so "
        "they are more likely to fear."
        "\nThe above reasoning is "
    )


def test_choice_order_is_numpy_permutation_of_sorted_options():
    opts = ["b", "a", "d", "c", "e"]
    expected = list(np.random.RandomState(seed=42).permutation(sorted(opts)))
    assert bigbench_choice_order(opts) == expected
    assert bigbench_choice_order(list(reversed(opts))) == expected


def test_task_without_bigbench_settings_uses_defaults():
    inst = Instance(id="1", input="2+2?", references=("4",), options=("4", "5"), gold=0)
    task = Task(name="toy", type=TaskType.MULTIPLE_CHOICE, instances=[inst])
    shown = bigbench_choice_order(["4", "5"])
    assert render_bigbench(task, inst) == "\nQ: 2+2?\n  choice: " + "\n  choice: ".join(shown) + "\nA: "
    gen = Instance(id="2", input="Say hi", references=("hi",))
    assert render_bigbench(task, gen) == "\nQ: Say hi\nA: "
