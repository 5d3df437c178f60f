"""Training units: which model trains on which tasks (STL: one per task, MTL: one for all),
and the prompts each unit trains on (budgets, altered instructions, instruction groups).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heedful.errors import HeedfulError
from heedful.perturbations import delusive, label_space, simplified
from heedful.prompts.sources import InstructionSources
from heedful.tasks.sampling import select_instances, within_budget
from heedful.tasks.types import Task
from heedful.train.config import TrainConfig
from heedful.train.data import render_examples, render_instruction_groups

log = logging.getLogger("heedful.train")


@dataclass(frozen=True)
class TrainUnit:
    """One model to train: ``name`` is its subfolder (``""`` for the MTL model)."""

    name: str
    tasks: tuple[Task, ...]


@dataclass
class UnitResult:
    name: str
    directory: Path
    model_dir: Path
    examples: int
    steps: int
    final_loss: float | None
    eval_run_id: str | None = None
    eval_summary: dict[str, Any] | None = None


def plan_units(tasks: Sequence[Task], setting: str) -> list[TrainUnit]:
    """STL: one unit per task (in its own folder); MTL: one unit on the mixture."""
    if setting == "stl":
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise HeedfulError("STL needs distinct task names (one model folder per task)")
        return [TrainUnit(_safe_name(t.name), (t,)) for t in tasks]
    return [TrainUnit("", tuple(tasks))]


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def perturbation(config: TrainConfig) -> Callable[[Task], Task] | None:
    """The task transform of ``prompts.alteration`` (Kung & Peng 2023), applied to training prompts."""
    alteration = config.prompts.alteration
    if alteration == "none":
        return None

    labels: dict[str, tuple[tuple[str, ...] | None, str]] = {}
    if config.prompts.label_spaces:
        labels = label_space.load_label_space_file(config.prompts.label_spaces)

    def transform(task: Task) -> Task:
        space, description = labels.get(task.name, (None, ""))
        if alteration == "simplified":
            return simplified.simplified_task(task, label_space=space, output_description=description or None)
        return delusive.delusive_demonstrations(task, seed=config.seed, label_space=space)

    return transform


def unit_examples(unit: TrainUnit, config: TrainConfig, tokenizer: Any) -> list[Any]:
    """The rendered training pairs of a unit: each task's train split cut to the budget."""
    transform = perturbation(config)
    examples = []
    for task in unit.tasks:
        chosen = _training_instances(task, config)
        examples.extend(
            render_examples(
                task,
                chosen,
                config.prompts.encoding() or "",
                tokenizer=tokenizer,
                max_source_length=config.data.max_source_length,
                transform=transform,
            )
        )
    return examples


def _training_instances(task: Task, config: TrainConfig) -> list[Any]:
    """The budget's instances of the training split; a task with none there trains on all of its instances.

    SuperNI tasks with fewer than 110 instances have no training split (the first 100 are
    test, the next 10 validation); Gupta 2023 reuses all of such a task's instances.
    """
    data = config.data
    seed = config.seed if data.sample == "random" else None
    chosen = select_instances(task, data.split, data.budget, seed=seed)
    if not chosen:
        log.warning("task %s: split '%s' is empty; training on all %d instances (Gupta 2023's rule)",
                    task.name, data.split, len(task.instances))
        chosen = within_budget(task.instances, data.budget, seed)
    if not chosen:
        raise HeedfulError(f"task {task.name}: no instances to train on")
    return chosen


def unit_instruction_groups(unit: TrainUnit, config: TrainConfig) -> list[list[Any]]:
    """Per training instance, its prompts under every instruction of ``config.prompts.instructions``.

    An instruction that cannot render some chosen instance of a task (a record for four
    options on a three-option example) is left out for that whole task, as evaluation
    does, so every group of a task has the same instructions.
    """
    prompts = config.prompts
    sources = InstructionSources.parse(prompts.instructions, kinds=prompts.kinds, collections=prompts.collections)
    groups: list[list[Any]] = []
    for task in unit.tasks:
        chosen = _training_instances(task, config)
        per_instruction = []  # each usable instruction's example for every chosen instance
        for instruction in sources.for_task(task):
            try:
                rendered = render_instruction_groups(task, chosen, [instruction])
            except HeedfulError as err:
                log.warning("instruction %s left out of training on %s: %s", instruction.id, task.name, err)
                continue
            per_instruction.append([example for [example] in rendered])
        if not per_instruction:
            raise HeedfulError(f"task {task.name}: no instruction of '{config.prompts.instructions}' renders its training instances")
        for group in zip(*per_instruction):
            groups.extend(aligned_groups(list(group)))
    return groups


def aligned_groups(group: list[Any]) -> list[list[Any]]:
    """One instance's prompts, split so KL compares like with like.

    The KL term compares the output distributions position by position, so it needs the
    same answer under every instruction of a group (the join before it aside: " B" after
    "Answer:", "B" after a trailing space). An instruction whose answer format differs from
    the reference's (a letter instead of the option text) trains on its own group,
    cross-entropy only; the reference keeps the prompts that share its answer (its
    paraphrases, as Sun et al. 2023 build their batches).
    """
    answer = group[0].target.strip()
    same = [e for e in group if e.target.strip() == answer]
    return [same, *([e] for e in group if e.target.strip() != answer)]
