"""The prompt format of Gupta 2023 ("Instruction Tuned Models are Quick Learners").

Reproduces ``DatasetReader.getRows`` of srsawant34/efficient_instruction_learning
``data_prep.py``: the task definition, two positive examples and the input, with
lower-case ``input:``/``output:`` labels and no stripping of any text::

    Definition: <definition>
    Positive example 1-
    input: <input>
    output: <output>
    Positive example 2-
    ...
    Now complete the following example-
    input: <instance input>
    output:<space>

The no-instruction variant (``--only_IpOp``) is ``input: <instance input>\\noutput: ``.
"""

from __future__ import annotations

from heedful.errors import HeedfulError
from heedful.tasks.types import Task

# data_prep.py's --num_examples default, and the thesis' "Definition, 2 Positive examples".
DEFAULT_NUM_POS_EXAMPLES = 2

# Encoding name -> whether the prompt carries the instruction (definition + examples).
GUPTA_ENCODINGS: dict[str, bool] = {"gupta": True, "gupta-noinst": False}


def encode_gupta(
    task: Task,
    instance_input: str,
    with_instruction: bool = True,
    num_pos_examples: int = DEFAULT_NUM_POS_EXAMPLES,
) -> str:
    """Render one instance in Gupta 2023's format.

    ``task.definition`` must be the raw first definition of the task file (as the SuperNI
    loader keeps it). A task with fewer positive examples than ``num_pos_examples`` shows
    the ones it has (``data_prep.py`` itself would fail with an IndexError there).
    """
    if not with_instruction:
        return f"input: {instance_input}\noutput: "
    if num_pos_examples < 0:
        raise HeedfulError(f"num_pos_examples must be at least 0, got {num_pos_examples}")
    examples = "".join(
        f"Positive example {number}-\ninput: {demo.input}\noutput: {demo.output}\n"
        for number, demo in enumerate(task.positive_examples[:num_pos_examples], 1)
    )
    return (
        f"Definition: {task.definition}\n{examples}"
        f"Now complete the following example-\ninput: {instance_input}\noutput: "
    )
