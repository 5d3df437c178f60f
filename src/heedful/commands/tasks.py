"""``heedful tasks``: list the tasks a spec loads and show the prompts a model would see.

``heedful tasks show --json`` is a contract other tools read: one JSON object a line,
``{"task", "instance_id", "prompt", "references", "options", "gold"}`` where ``options``
are the choices scored by rank classification (null for generation) and ``gold`` indexes
them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.errors import HeedfulError
from heedful.prompts.bigbench import render_bigbench
from heedful.prompts.collection import load_collection
from heedful.prompts.render import render_instruction
from heedful.prompts.superni import encode
from heedful.prompts.types import RenderedExample
from heedful.tasks.spec import load_tasks
from heedful.tasks.types import Instance, Task

app = typer.Typer(
    name="tasks",
    help="List tasks and show their rendered prompts.",
    no_args_is_help=True,
    add_completion=False,
)

SPLITS = ("test", "val", "train")

Spec = Annotated[
    str,
    typer.Argument(
        help="Task spec: bigbench:NAME[,NAME][@ROOT] (suites bbl, bbl-sun14, bbl-mc), "
        "superni:PATH[@SPLITFILE], mmlu:PATH[@DEVPATH], jsonl:PATH; join several with '+'.",
        show_default=False,
    ),
]
Seed = Annotated[int, typer.Option(help="Seed of the per-instance BIG-bench option shuffle.")]
ShuffleOptions = Annotated[bool, typer.Option(help="Shuffle BIG-bench options (seeded, recorded).")]


@app.command("list")
def list_command(spec: Spec, seed: Seed = 0, shuffle_options: ShuffleOptions = True) -> None:
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


def _instruction_renderer(path: Path, instruction_id: str):
    """A ``(task, instance) -> RenderedExample`` for the record ``instruction_id`` of ``path``."""
    matching = [i for i in load_collection(path) if i.id == instruction_id]
    if not matching:
        raise HeedfulError(f"{path}: no instruction with id '{instruction_id}'")

    def render(task: Task, instance: Instance) -> RenderedExample:
        wanted = (task.name, task.metadata.get("base_task"))
        chosen = next((i for i in matching if i.task in wanted), None)
        chosen = chosen or next((i for i in matching if i.task is None), None)
        if chosen is None:
            written_for = ", ".join(sorted({str(i.task) for i in matching}))
            raise HeedfulError(
                f"{path}: instruction '{instruction_id}' is written for {written_for}, not for task '{task.name}'"
            )
        return render_instruction(chosen, task, instance)

    return render


def _plain_renderer(encoding: str | None):
    def render(task: Task, instance: Instance) -> RenderedExample:
        if encoding is not None:
            prompt = encode(task, instance.input, encoding)
        else:
            # BIG-bench's own format is the default for every task: it is the one
            # prompt format that needs nothing but the instance.
            prompt = render_bigbench(task, instance)
        return RenderedExample(
            task=task.name,
            instance_id=instance.id,
            prompt=prompt,
            references=instance.references,
            choices=instance.options,
            gold=instance.gold,
        )

    return render


def _examples(tasks: list[Task], split: str, limit: int | None, render) -> Iterator[RenderedExample]:
    for task in tasks:
        instances = task.split(split)
        if limit is not None:
            instances = instances[:limit]
        for instance in instances:
            yield render(task, instance)


@app.command("show")
def show_command(
    spec: Spec,
    task: Annotated[Optional[str], typer.Option("--task", help="Only this task (by name).")] = None,
    encoding: Annotated[
        Optional[str], typer.Option(help="SuperNI/Gupta encoding (def, def+pos2, ...) instead of BIG-bench's format.")
    ] = None,
    instructions: Annotated[
        Optional[Path], typer.Option(help="Instruction collection .jsonl to render with (needs --instruction-id).")
    ] = None,
    instruction_id: Annotated[Optional[str], typer.Option(help="Id of the instruction in --instructions.")] = None,
    split: Annotated[str, typer.Option(help="Split to show: test, val or train.")] = "test",
    limit: Annotated[Optional[int], typer.Option(help="At most N instances per task, in file order.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines: task, instance_id, prompt, references, options, gold.")] = False,
    seed: Seed = 0,
    shuffle_options: ShuffleOptions = True,
) -> None:
    """Print the prompts of a spec's instances, rendered as a model would see them.

    Default rendering is BIG-bench's zero-shot format; ``--encoding`` uses a SuperNI
    encoding; ``--instructions FILE --instruction-id ID`` an instruction collection record.
    """
    if split not in SPLITS:
        raise HeedfulError(f"--split must be one of {', '.join(SPLITS)}, got '{split}'")
    if limit is not None and limit < 1:
        raise HeedfulError("--limit must be at least 1")
    if encoding is not None and (instructions is not None or instruction_id is not None):
        raise HeedfulError("--encoding and --instructions/--instruction-id exclude each other")
    if (instructions is None) != (instruction_id is None):
        raise HeedfulError("--instructions and --instruction-id go together")

    tasks = _pick_tasks(load_tasks(spec, seed=seed, shuffle_options=shuffle_options), task)
    if instructions is not None:
        render = _instruction_renderer(instructions, instruction_id)  # type: ignore[arg-type]
    else:
        render = _plain_renderer(encoding)

    shown = 0
    for example in _examples(tasks, split, limit, render):
        shown += 1
        if as_json:
            record = {
                "task": example.task,
                "instance_id": example.instance_id,
                "prompt": example.prompt,
                "references": list(example.references),
                "options": list(example.choices) if example.choices is not None else None,
                "gold": example.gold,
            }
            typer.echo(json.dumps(record, ensure_ascii=False))
        else:
            _echo_readable(example)
    if shown == 0:
        raise HeedfulError(f"no instances in split '{split}' of the selected tasks")


def _echo_readable(example: RenderedExample) -> None:
    typer.secho(f"=== {example.task} / {example.instance_id} ===", bold=True)
    typer.echo(example.prompt)
    if example.choices is not None:
        for i, choice in enumerate(example.choices):
            mark = "*" if i == example.gold else " "
            typer.echo(f"  {mark} [{i}] {choice}")
    typer.echo(f"references: {json.dumps(list(example.references), ensure_ascii=False)}")
    typer.echo("")
