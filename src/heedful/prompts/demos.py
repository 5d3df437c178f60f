"""k-shot demonstrations: draw worked examples and put them before the query.

Sampling: demonstrations come from outside the evaluated instances where the task has
enough. They are drawn with a seeded RNG from the ``train`` split if it has enough
instances, else from ``train`` and ``val``, else from every instance not evaluated
(SuperNI and MMLU carry train/val splits; a BIG-bench task has only ``test`` instances, so
its demonstrations are the instances left out of the evaluated sample, as in Sun et al.'s
release, which holds five fixed examples of each task out of its test set). When every
instance is evaluated and none is left over, each instance's demonstrations are drawn
from the other evaluated instances (leave one out): never the instance itself.

Layout: every demonstration is rendered with the *same* instruction as the query and
followed by its target, then the query prompt follows; blocks are joined by
``separator`` (a blank line). This is FLAN's few-shot layout (each exemplar in the full
zero-shot template). Sun et al. (2023) report one-shot results without describing the
layout; their release (InstructionEval) hand-writes a few-shot variant per instruction
that states the instruction once before the examples. A declarative record cannot be
split into "instruction" and "example" parts, so heedful repeats the whole rendered
prompt per demonstration: the instruction, its options layout and answer format are
shown exactly as the query will see them, which is what one-shot prompting is meant to
demonstrate.

The target follows its prompt with one space unless the prompt ends in whitespace, the
same rule the evaluator uses to join a prompt and a scored continuation, so a
demonstration's answer looks exactly like the candidate answers of the query.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import replace

from heedful.errors import HeedfulError
from heedful.prompts.instruction import Instruction
from heedful.prompts.render import render_instruction
from heedful.prompts.types import RenderedExample
from heedful.store import content_hash
from heedful.tasks.types import Instance, Task

# Splits tried in order when no pool split is named.
POOL_PREFERENCE: tuple[str, ...] = ("train", "val")


def demonstration_pool(task: Task, exclude_ids: Iterable[str], k: int, pool_split: str | None = None) -> list[Instance]:
    """The instances demonstrations are drawn from, in file order.

    With ``pool_split``: that split minus ``exclude_ids``. Otherwise the smallest of
    ``train``; ``train`` + ``val``; every instance not excluded, that holds ``k``.
    """
    excluded = set(exclude_ids)
    eligible = [inst for inst in task.instances if inst.id not in excluded]
    if pool_split is not None:
        return [inst for inst in eligible if inst.split == pool_split]
    pool: list[Instance] = []
    for split in POOL_PREFERENCE:
        pool.extend(inst for inst in eligible if inst.split == split)
        if len(pool) >= k:
            return pool
    return eligible


def sample_demonstrations(
    task: Task,
    k: int,
    *,
    seed: int,
    exclude_ids: set[str],
    pool_split: str | None = None,
) -> list[Instance]:
    """Draw ``k`` demonstrations of ``task`` with a seeded RNG, none of them in ``exclude_ids``.

    The pool is described in :func:`demonstration_pool`. The same (task, seed, pool)
    always gives the same demonstrations in the same order. Raises ``HeedfulError`` when
    the pool has fewer than ``k`` instances.
    """
    if k < 0:
        raise HeedfulError(f"task {task.name}: number of demonstrations must be at least 0, not {k}")
    if k == 0:
        return []
    pool = demonstration_pool(task, exclude_ids, k, pool_split)
    if len(pool) < k:
        where = f"split '{pool_split}'" if pool_split is not None else "the task"
        raise HeedfulError(
            f"task {task.name}: {k} demonstrations asked for but {where} has only {len(pool)} "
            f"instances outside the {len(exclude_ids)} evaluated ones"
        )
    # A string seed is hashed with SHA-512 by random.Random: stable across processes.
    rng = random.Random(f"demos|{task.name}|{seed}")
    return rng.sample(pool, k)


def answer_join(prompt: str) -> str:
    """What goes between a prompt and its answer: nothing after whitespace, else a space."""
    return "" if not prompt or prompt[-1].isspace() else " "


def continuation_strings(prompt: str, choices: Sequence[str]) -> tuple[str, ...]:
    """The exact strings scored after the prompt: each choice after :func:`answer_join`."""
    return tuple(answer_join(prompt) + choice for choice in choices)


def hash_seed(text: str) -> int:
    """A stable small integer from a string (Python's hash() is salted per process)."""
    return int(content_hash(text)[:8], 16)


def demonstrations_for(task: Task, instances: Sequence[Instance], shots: int, seed: int) -> dict[str, list[Instance]]:
    """Each evaluated instance's ``shots`` demonstrations, drawn apart from the evaluated instances (see the module doc).

    Seeded per instance (``seed`` + :func:`hash_seed` of its id), so an instance gets the
    same demonstrations whatever else is evaluated with it. Empty when ``shots`` is 0.
    """
    if shots < 1:
        return {}
    exclude = {inst.id for inst in instances}
    if len(demonstration_pool(task, exclude, shots)) < shots:  # every instance is evaluated: leave one out
        return {
            inst.id: sample_demonstrations(task, shots, seed=seed + hash_seed(inst.id), exclude_ids={inst.id})
            for inst in instances
        }
    return {
        inst.id: sample_demonstrations(task, shots, seed=seed + hash_seed(inst.id), exclude_ids=exclude)
        for inst in instances
    }


def render_example(
    instruction: Instruction, task: Task, instance: Instance, demos: Sequence[Instance] = ()
) -> RenderedExample:
    """The prompt a model is given for ``instance``: the one place evaluation and ``tasks show`` render."""
    if demos:
        return render_with_demonstrations(instruction, task, instance, demos)
    return render_instruction(instruction, task, instance)


def render_with_demonstrations(
    instruction: Instruction,
    task: Task,
    instance: Instance,
    demos: Sequence[Instance],
    separator: str = "\n\n",
) -> RenderedExample:
    """Render ``instance`` after ``demos``, each in the same instruction and followed by its target.

    The result is the query's ``RenderedExample`` (same references, choices and gold)
    with the demonstration blocks in front of its prompt. A demonstration that is the
    query itself is refused, and one the instruction cannot render raises the
    renderer's ``HeedfulError``.
    """
    query = render_instruction(instruction, task, instance)
    blocks = []
    for demo in demos:
        if demo.id == instance.id:
            raise HeedfulError(f"task {task.name}: instance '{instance.id}' cannot be its own demonstration")
        shown = render_instruction(instruction, task, demo)
        blocks.append(shown.prompt + answer_join(shown.prompt) + shown.references[0])
    blocks.append(query.prompt)
    return replace(query, prompt=separator.join(blocks))
