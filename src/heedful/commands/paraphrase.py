"""``heedful paraphrase``: generate, filter and cache paraphrases of tasks' instructions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from heedful.commands import options as opt
from heedful.perturbations.label_space import load_label_space_file
from heedful.perturbations.variants import base_instructions, resolve_label_space
from heedful.progress import stdout_console
from heedful.prompts.collection import save_collection
from heedful.prompts.sources import InstructionSources
from heedful.tasks.spec import load_tasks

# Modules that load torch are imported inside the commands: `heedful --help` starts in 0.2 s, not 2 s.


def paraphrase_command(
    tasks: opt.Tasks = "bigbench:bbl-mc",
    instructions: opt.Instructions = "designer",
    out: Annotated[Path, typer.Option(help="Collection file (.jsonl) the paraphrases are written to.")] = Path(
        "paraphrases.jsonl"
    ),
    k: Annotated[int, typer.Option("-k", "--k", help="Paraphrases to keep per instruction.")] = 5,
    endpoint: Annotated[
        Optional[str], typer.Option(help="OpenAI-compatible server URL (POST /v1/chat/completions) instead of a local model.")
    ] = None,
    model_name: Annotated[
        Optional[str], typer.Option(help="Model name for --endpoint, or a local model alias/path (default SmolLM2).")
    ] = None,
    threshold: Annotated[float, typer.Option(help="Minimum embedding cosine similarity to the original.")] = 0.7,
    label_spaces: opt.LabelSpaces = None,
    seed: opt.Seed = 0,
) -> None:
    """Paraphrase each task's base instructions K times with an instruct model and cache them.

    Paraphrases keep every placeholder and every label the original mentions, and have
    embedding similarity >= --threshold. SuperNI encodings have their definition
    paraphrased. Evaluate them with ``heedful eval --perturb paraphrase:FILE``.
    """
    from heedful.perturbations.paraphrase import generate_paraphrases

    spaces = load_label_space_file(label_spaces) if label_spaces else None
    sources = InstructionSources.parse(instructions)
    backend = None
    if not endpoint:
        from heedful.models import load_model

        backend = load_model(model_name or "smollm2-135m-instruct")
    collected = []
    for task in load_tasks(tasks, seed=seed):
        labels, _, _ = resolve_label_space(task, spaces)
        for base in base_instructions(sources.for_task(task)):
            found = generate_paraphrases(
                base, k, seed=seed, task=task, label_space=labels, backend=backend,
                endpoint=endpoint, model_name=model_name, threshold=threshold,
            )
            collected.extend(found)
            stdout_console().print(f"{task.name}\t{base.id}\t{len(found)}/{k} paraphrases kept")
    save_collection(collected, out)
    stdout_console().print(f"wrote {len(collected)} paraphrases to {out}")
