"""BIG-bench's own zero-shot prompt for a JSON task example.

Reproduces ``default_format_fn`` and ``JsonTask.evaluate_fixed_shot`` of BIG-bench's
``bigbench/api/json_task.py`` for zero shots::

    task_prefix + example_input_prefix + input
                + choice_prefix + choice_prefix.join(shown_choices)   # if appended
                + example_output_prefix

The appended choices are BIG-bench's order, not the instance's: the options sorted,
then permuted by ``numpy.random.RandomState(random_seed)`` created afresh for every
example (BIG-bench's default seed is 42). That order depends only on the set of
options, so the prompt is the same whatever the option shuffle of the loader.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heedful.tasks.types import BigBenchFormat, Instance, Task

BIGBENCH_SEED = 42  # JsonTask's default random_seed


def bigbench_choice_order(options: Sequence[str], random_seed: int = BIGBENCH_SEED) -> list[str]:
    """The options in the order BIG-bench appends them to the input."""
    ordered = sorted(options)
    permutation = np.random.RandomState(seed=random_seed).permutation(len(ordered))
    return [ordered[i] for i in permutation]


def render_bigbench(task: Task, instance: Instance, *, random_seed: int = BIGBENCH_SEED) -> str:
    """The exact zero-shot prompt BIG-bench builds for ``instance`` of ``task``.

    Tasks without BIG-bench settings (e.g. MMLU) use BIG-bench's defaults.
    """
    fmt = task.bigbench_format or BigBenchFormat()
    text = instance.input
    if instance.options is not None and fmt.append_choices_to_input:
        shown = bigbench_choice_order(instance.options, random_seed)
        text = text + fmt.choice_prefix + fmt.choice_prefix.join(shown)
    return fmt.task_prefix + fmt.example_input_prefix + text + fmt.example_output_prefix
