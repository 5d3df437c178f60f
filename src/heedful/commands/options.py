"""CLI option types shared by the evaluation commands (one declaration, many commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Model = Annotated[str, typer.Option(help="Model alias, hub id, local directory or .gguf file.")]
Tasks = Annotated[str, typer.Option(help="Task spec: bigbench:bbl-mc, superni:PATH[@SPLITFILE], mmlu:PATH, jsonl:PATH.")]
Instructions = Annotated[
    str, typer.Option(help="Comma list: designer, heedful, nonsense, superni:ENCODING, or collection .jsonl files.")
]
Kinds = Annotated[Optional[str], typer.Option(help="Keep only these instruction kinds (comma list).")]
Collections = Annotated[Optional[str], typer.Option(help="Keep only these collections (comma list).")]
Perturb = Annotated[
    Optional[str],
    typer.Option(help="Comma list of perturbations, each evaluated as its own instruction kind: none, simplified, "
                 "delusive, negated, nonsense, incorrect, closest, drop_words, shuffle_words, char_typos, paraphrase."),
]
LabelSpaces = Annotated[Optional[Path], typer.Option(help="Label-space file (SuperNI label_space.json format).")]
Baselines = Annotated[bool, typer.Option(help="Report random-guess and majority baselines beside the scores.")]
Shots = Annotated[int, typer.Option(help="Demonstrations per prompt, drawn from a disjoint pool.")]
Limit = Annotated[Optional[int], typer.Option(help="Seeded sample of at most N instances per task.")]
Split = Annotated[str, typer.Option(help="Split to evaluate: test, val or train.")]
Seed = Annotated[int, typer.Option(help="Seed for sampling instances, demonstrations and option order.")]
ShuffleOptions = Annotated[bool, typer.Option(help="Shuffle BIG-bench options (seeded, recorded).")]
Scoring = Annotated[str, typer.Option(help="Rank classification: sum, mean (per token), or sun (Sun et al.).")]
Dtype = Annotated[str, typer.Option(help="float32, bfloat16 or float16.")]
Device = Annotated[str, typer.Option(help="cpu or cuda.")]
Adapter = Annotated[Optional[str], typer.Option(help="PEFT adapter directory.")]
Chat = Annotated[bool, typer.Option(help="Wrap prompts in the model's chat template.")]
MaxNewTokens = Annotated[int, typer.Option(help="Generation length for open tasks.")]
Stop = Annotated[Optional[list[str]], typer.Option(help="Stop string for generation (repeatable; default newline).")]
Truncation = Annotated[str, typer.Option(help="Prompt longer than the context: left (truncate, counted) or error.")]
OnUnfit = Annotated[str, typer.Option(help="A record that does not fit a task's examples: skip it for that task (warned, recorded in results.json) or error.")]
BatchSize = Annotated[int, typer.Option(help="Batch size (halved automatically on out-of-memory).")]
Out = Annotated[Path, typer.Option(help="Output folder (heedful.sqlite, records.jsonl, results.json).")]


def split_csv(value: Optional[str]) -> Optional[list[str]]:
    """A comma-list option as a list of its non-empty, stripped items (None stays None)."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]
