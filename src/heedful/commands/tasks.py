"""``heedful tasks``: list the tasks a spec loads and show the prompts a model would see.

``heedful tasks show --json`` is a contract other tools read: one JSON object a line,
``{"task", "instruction_id", "instance_id", "prompt", "references", "options", "gold"}``
where ``options`` are the choices scored by rank classification (null for generation) and
``gold`` indexes them. Prompts are rendered by the function ``heedful eval`` scores with
(:func:`heedful.prompts.demos.render_example`), from the same options.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Optional

import typer

from heedful.commands import options as opt
from heedful.errors import HeedfulError
from heedful.prompts.demos import demonstrations_for, render_example
from heedful.prompts.instruction import Instruction
from heedful.prompts.sources import InstructionSources
from heedful.prompts.types import RenderedExample
from heedful.tasks.sampling import select_instances
from heedful.tasks.spec import load_tasks
from heedful.tasks.types import Task

app = typer.Typer(
    name="tasks",
    help="List tasks and show their rendered prompts.",
    no_args_is_help=True,
    add_completion=False,
)

Spec = Annotated[
    str,
    typer.Argument(
        help="Task spec: bigbench:NAME[,NAME][@ROOT] (suites bbl, bbl-sun14, bbl-mc), "
        "superni:PATH[@SPLITFILE], mmlu:PATH[@DEVPATH], jsonl:PATH; join several with '+'.",
        show_default=False,
    ),
]


@app.command("list")
def list_command(spec: Spec, seed: opt.Seed = 0, shuffle_options: opt.ShuffleOptions = True) -> None:
    """Print one line per task: name, type and instance count, tab-separated."""
    for task in load_tasks(spec, seed=seed, shuffle_options=shuffle_options):
        typer.echo(f"{task.name}\t{task.type.value}\t{len(task.instances)}")


def _pick_tasks(tasks: list[Task], name: str | None) -> list[Task]:
    if name is None:
        return tasks
    picked = [t for t in tasks if t.name == name]
    if not picked:
        shown = ", ".join(t.name for t in tasks[:10]) + (", ..." if len(tasks) > 10 else "")
        raise HeedfulError(f"--task: no task '{name}' in the spec (tasks: {shown})")
    return picked


def _examples(
    tasks: list[Task], sources: InstructionSources, instruction_id: str | None, split: str, limit: int | None,
    shots: int, seed: int,
) -> Iterator[tuple[Instruction, RenderedExample]]:
    """Every (instruction, instance) prompt, selected and rendered exactly as ``heedful eval`` does."""
    for task in tasks:
        instructions = [i for i in sources.for_task(task) if instruction_id is None or i.id == instruction_id]
        instances = select_instances(task, split, budget=limit, seed=seed)
        if not instances:
            raise HeedfulError(f"task {task.name}: no instances in split '{split}'")
        demos = demonstrations_for(task, instances, shots, seed)
        for instruction in instructions:
            try:
                examples = [render_example(instruction, task, inst, demos.get(inst.id, ())) for inst in instances]
            except HeedfulError as err:
                if instruction_id is not None:  # the one instruction asked for: its misfit is the answer
                    raise
                # As eval (--on-unfit skip): a record that does not fit one instance is dropped for the task.
                typer.echo(f"skipped instruction {instruction.id} for task {task.name}: {err}", err=True)
                continue
            for example in examples:
                yield instruction, example


@app.command("show")
def show_command(
    spec: Spec,
    task: Annotated[Optional[str], typer.Option("--task", help="Only this task (by name).")] = None,
    instructions: opt.Instructions = "designer",
    instruction_id: Annotated[Optional[str], typer.Option(help="Only the instruction with this id.")] = None,
    kinds: opt.Kinds = None,
    collections: opt.Collections = None,
    shots: opt.Shots = 0,
    split: opt.Split = "test",
    limit: opt.Limit = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines: task, instruction_id, instance_id, prompt, references, options, gold.")
    ] = False,
    seed: opt.Seed = 0,
    shuffle_options: opt.ShuffleOptions = True,
) -> None:
    """Print the prompts of a spec's instances exactly as ``heedful eval`` scores them.

    Same instructions, instance sample, option order and demonstrations as an eval with
    the same options; by default each task's designer instruction.
    """
    if limit is not None and limit < 1:
        raise HeedfulError("--limit must be at least 1")
    sources = InstructionSources.parse(instructions, kinds=opt.split_csv(kinds), collections=opt.split_csv(collections))
    tasks = _pick_tasks(load_tasks(spec, seed=seed, shuffle_options=shuffle_options), task)
    shown = 0
    for instruction, example in _examples(tasks, sources, instruction_id, split, limit, shots, seed):
        shown += 1
        if as_json:
            record = {
                "task": example.task,
                "instruction_id": instruction.id,
                "instance_id": example.instance_id,
                "prompt": example.prompt,
                "references": list(example.references),
                "options": list(example.choices) if example.choices is not None else None,
                "gold": example.gold,
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            _echo_readable(instruction, example)
    if shown == 0:
        wanted = f" with id '{instruction_id}'" if instruction_id else ""
        raise HeedfulError(f"no instruction of '{instructions}'{wanted} renders an instance of split '{split}'")


def _echo_readable(instruction: Instruction, example: RenderedExample) -> None:
    typer.secho(f"=== {example.task} / {instruction.id} / {example.instance_id} ===", bold=True)
    typer.echo(example.prompt)
    if example.choices is not None:
        for i, choice in enumerate(example.choices):
            mark = "*" if i == example.gold else " "
            typer.echo(f"  {mark} [{i}] {choice}")
    typer.echo(f"references: {json.dumps(list(example.references), ensure_ascii=False)}")
    typer.echo("")
