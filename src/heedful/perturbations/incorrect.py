"""Incorrect instructions (Sun et al. 2023, section 4.3): an observed instruction of another task.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import replace

from heedful.errors import HeedfulError
from heedful.perturbations.template import derived
from heedful.prompts.instruction import Instruction


def incorrect_instruction(
    task_type: str | Collection[str],
    observed_pool: Sequence[Instruction],
    exclude_task: str,
    seed: int,
) -> Instruction:
    """An observed instruction written for another task with the same output format.

    Sun et al.'s *incorrect* control: an instruction seen in training, for a completely
    different task whose answers have the same form. Candidates are the ``observed``
    records of ``observed_pool`` with a task other than ``exclude_task``, a task type in
    ``task_type`` (``"MC"`` or e.g. ``{"MC", "BC"}`` for any classification) and a
    template that is not one of ``exclude_task``'s own observed templates (collections
    attach the same generic template to many tasks). One is drawn with ``seed`` and
    returned for ``exclude_task`` with ``kind="incorrect"``. Its placeholders are those
    of the other task: the renderer reports an instance it cannot fill.
    """
    types = {task_type} if isinstance(task_type, str) else set(task_type)
    own = {i.template for i in observed_pool if i.kind == "observed" and i.task == exclude_task}
    candidates = [
        i
        for i in observed_pool
        if i.kind == "observed"
        and i.task is not None
        and i.task != exclude_task
        and i.task_type in types
        and i.template not in own
    ]
    if not candidates:
        raise HeedfulError(
            f"no observed instruction of another task with task type {'/'.join(sorted(types))} "
            f"to use as an incorrect instruction for task '{exclude_task}'"
        )
    # Sort so the draw depends on the pool's content, not its order.
    candidates.sort(key=lambda i: (i.task or "", i.id, i.template))
    source = random.Random(seed).choice(candidates)
    return replace(
        derived(source, "incorrect", source.template, f"incorrect({seed})", seed=seed, source_task=source.task),
        id=f"incorrect/{source.task}/{source.id}",
        task=exclude_task,
    )


