"""``heedful tasks``: list the tasks a spec loads and show the prompts a model would see.

``heedful tasks show --json`` is a contract other tools read: one JSON object a line,
``{"task", "instruction_id", "instance_id", "prompt", "references", "options", "gold"}``
where ``options`` are the choices scored by rank classification (null for generation) and
``gold`` indexes them. The prompts are ``heedful eval``'s own work items
(:func:`heedful.evaluate.runner.build_work`), from the same options.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from heedful.commands.configured import add_config_command
from heedful.errors import HeedfulError
from heedful.evaluate.config import EvalConfig
from heedful.prompts.config import PromptConfig
from heedful.prompts.instruction import Instruction
from heedful.prompts.sources import InstructionSources
from heedful.prompts.types import RenderedExample
from heedful.tasks.config import DataConfig
from heedful.tasks.spec import load_data, load_tasks
from heedful.tasks.types import Task

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.3 s, not 2 s.

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
        "superni:PATH[@SPLITFILE], mmlu:PATH[@DEVPATH], jsonl:PATH, lmeval:NAME[,NAME][@INCLUDE_PATH], "
        "hf:SOURCE[:CONFIG][@SPLIT][#CARD]; join several with '+'.",
        show_default=False,
    ),
]


@app.command("list")
def list_command(
    spec: Spec,
    seed: Annotated[int, typer.Option(help="Seed for the option order.")] = 0,
    shuffle_options: Annotated[bool, typer.Option(help="Shuffle BIG-bench options (seeded).")] = True,
) -> None:
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


@dataclass
class ShowConfig:
    """The prompts to show: the same sections an evaluation reads."""

    data: DataConfig = field(default_factory=DataConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    task: str | None = None
    """Only this task (by name)."""
    instruction_id: str | None = None
    """Only the instruction with this id."""
    json: bool = False
    """JSON lines: task, instruction_id, instance_id, prompt, references, options, gold."""
    seed: int = 0
    """Seed for sampling instances, demonstrations and option order (as eval's)."""


def show(config: ShowConfig) -> None:
    """Print the prompts of a spec's instances exactly as ``heedful eval`` scores them.

    The prompts are the evaluation's own work items: same instructions, perturbations,
    instance sample, option order and demonstrations as an eval with the same options.
    """
    from heedful.evaluate.runner import build_work

    wanted = config.instruction_id
    # The one instruction asked for by id: its misfit is the answer, so it is an error, not a skip.
    prompts = dataclasses.replace(config.prompts, on_unfit="error") if wanted else config.prompts
    evaluation = EvalConfig(data=config.data, prompts=prompts, seed=config.seed)
    tasks = _pick_tasks(load_data(config.data, seed=config.seed),
                        config.task)
    sources = InstructionSources.parse(
        prompts.instructions, kinds=prompts.kinds, collections=prompts.collections, ids=[wanted] if wanted else None
    )
    if wanted and not any(sources.for_task(task) for task in tasks):
        raise HeedfulError(f"no instruction of '{prompts.instructions}' with id '{wanted}' applies to these tasks")
    shown, _ = build_work(tasks, sources, evaluation, chat_wrap=None)
    for item in shown:
        if config.json:
            typer.echo(json.dumps(_json_record(item.instruction, item.example), ensure_ascii=False))
        else:
            _echo_readable(item.instruction, item.example)


add_config_command(app, "show", ShowConfig, show)


def _json_record(instruction: Instruction, example: RenderedExample) -> dict[str, Any]:
    return {
        "task": example.task,
        "instruction_id": instruction.id,
        "instance_id": example.instance_id,
        "prompt": example.prompt,
        "references": list(example.references),
        "options": list(example.choices) if example.choices is not None else None,
        "gold": example.gold,
    }


def _echo_readable(instruction: Instruction, example: RenderedExample) -> None:
    typer.secho(f"=== {example.task} / {instruction.id} / {example.instance_id} ===", bold=True)
    typer.echo(example.prompt)
    if example.choices is not None:
        for i, choice in enumerate(example.choices):
            mark = "*" if i == example.gold else " "
            typer.echo(f"  {mark} [{i}] {choice}")
    typer.echo(f"references: {json.dumps(list(example.references), ensure_ascii=False)}")
    typer.echo("")
