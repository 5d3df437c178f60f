"""Delusive demonstrations whose input-output mapping is wrong (Kung & Peng 2023).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from heedful.errors import HeedfulError
from heedful.perturbations.template import check_rate, round_half_up, with_perturbation
from heedful.tasks.normalize import normalize_answer
from heedful.tasks.types import Demonstration, Task


def delusive_demonstrations(
    task: Task,
    *,
    rate: float = 1.0,
    seed: int,
    label_space: Sequence[str] | None = None,
) -> Task:
    """``task`` whose positive demonstrations map inputs to wrong outputs.

    ``round(rate * n)`` of the ``n`` positive demonstrations, drawn with ``seed``, are
    altered. With a label space (``label_space``, else ``task.label_space``) an altered
    demonstration's output becomes a label drawn uniformly among those that differ from
    its gold output under SuperNI normalisation. Without one (generation tasks) the
    altered demonstrations exchange outputs along a random cycle, so none keeps its own.
    Altered demonstrations lose their explanation (it justifies the gold output).
    An entry appended to ``metadata['perturbations']`` records the rate, seed, mode and
    altered indices.
    """
    check_rate(rate)
    demos = list(task.positive_examples)
    k = round_half_up(rate * len(demos))
    rng = random.Random(seed)
    altered = sorted(rng.sample(range(len(demos)), k))
    labels = tuple(dict.fromkeys(label_space)) if label_space is not None else task.label_space
    new = list(demos)
    if labels:
        mode = "wrong_label"
        for i in altered:
            gold = normalize_answer(demos[i].output)
            wrong = [label for label in labels if normalize_answer(label) != gold]
            if not wrong:
                raise HeedfulError(f"task '{task.name}': the label space has no label other than '{demos[i].output}'")
            new[i] = Demonstration(input=demos[i].input, output=rng.choice(wrong), explanation="")
    else:
        mode = "swap_outputs"
        if k == 1 or (k >= 2 and len({normalize_answer(demos[i].output) for i in altered}) < 2):
            raise HeedfulError(
                f"task '{task.name}': swapping outputs needs at least two altered demonstrations "
                f"with different outputs (rate {rate} of {len(demos)} alters {k})"
            )
        if k:
            new = _swap_outputs(demos, altered, rng, task.name)
    record = {"name": "delusive_demonstrations", "rate": rate, "seed": seed, "mode": mode, "altered": altered}
    return replace(task, positive_examples=tuple(new), metadata=with_perturbation(task, record))


def _swap_outputs(demos: list[Demonstration], altered: list[int], rng: random.Random, name: str) -> list[Demonstration]:
    # A cycle through the altered demonstrations in random order is a derangement; retry
    # a few orders when equal outputs would leave a demonstration with its own answer.
    for _ in range(100):
        order = rng.sample(altered, len(altered))
        source = {order[j]: order[(j + 1) % len(order)] for j in range(len(order))}
        if all(normalize_answer(demos[i].output) != normalize_answer(demos[source[i]].output) for i in altered):
            new = list(demos)
            for i in altered:
                new[i] = Demonstration(input=demos[i].input, output=demos[source[i]].output, explanation="")
            return new
    raise HeedfulError(f"task '{name}': too many demonstrations share an output to swap them all")
