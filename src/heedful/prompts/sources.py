"""Resolve a ``--prompts.instructions`` spec into the instructions that apply to each task.

A spec is a comma-separated list of sources:

* ``designer`` — each task's own instruction (SuperNI definition, BIG-bench prefix, MMLU header);
* ``heedful`` — heedful's built-in collection of phrasings for BIG-bench Lite tasks;
* ``nonsense`` — the built-in irrelevant instructions of Sun et al. 2023;
* ``superni:ENCODING`` — a SuperNI prompt encoding (``def+pos2``...) as the task's instruction;
* a path to a collection file (``.jsonl``, the format in docs/instruction-format.md).

Task-specific records apply to their task (a BIG-bench subtask ``name:sub`` matches
records of ``name``); task-independent records (``task`` null) apply to tasks of the
same task type, and nonsense records to every task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.prompts.builtin import builtin_instructions, encoding_instruction
from heedful.prompts.collection import load_collection
from heedful.prompts.instruction import Instruction
from heedful.prompts.nonsense import nonsense_instructions
from heedful.prompts.phrasings import load_builtin_phrasings
from heedful.tasks.types import Task

BUILTIN_SOURCES = ("designer", "heedful", "nonsense")


def base_task_name(task: Task) -> str:
    """The collection-level task name: BIG-bench subtasks ``a:b`` share records of ``a``,
    MMLU subjects share records of ``mmlu`` (loaders record it as ``metadata["base_task"]``)."""
    return str(task.metadata.get("base_task") or task.name.split(":", 1)[0])


def task_type_code(task: Task, known: Sequence[Instruction] = ()) -> str | None:
    """The collection format's task type (QA/BC/MC) for ``task``, from its own records if any."""
    name = base_task_name(task)
    for instruction in known:
        if instruction.task == name and instruction.task_type:
            return instruction.task_type
    return None


@dataclass
class InstructionSources:
    """The parsed ``--prompts.instructions`` spec with optional kind and collection filters."""

    builtin: tuple[str, ...]
    encodings: tuple[str, ...]
    records: tuple[Instruction, ...]
    kinds: frozenset[str] | None = None
    collections: frozenset[str] | None = None
    ids: frozenset[str] | None = None

    @classmethod
    def parse(
        cls, spec: str, *, kinds: Sequence[str] | None = None, collections: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> InstructionSources:
        builtin: list[str] = []
        encodings: list[str] = []
        records: list[Instruction] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if part in BUILTIN_SOURCES:
                builtin.append(part)
                if part == "heedful":
                    records.extend(load_builtin_phrasings())
                elif part == "nonsense":
                    records.extend(nonsense_instructions())
            elif part.startswith("superni:"):
                encodings.append(part.split(":", 1)[1])
            elif part.endswith(".jsonl") or Path(part).exists():
                if not Path(part).is_file():
                    raise HeedfulError(f"{part}: instruction collection file not found")
                records.extend(load_collection(part))
            else:
                raise HeedfulError(
                    f"unknown instruction source '{part}': use {', '.join(BUILTIN_SOURCES)}, "
                    "superni:ENCODING, or a collection .jsonl file"
                )
        return cls(
            builtin=tuple(builtin),
            encodings=tuple(encodings),
            records=tuple(records),
            kinds=frozenset(kinds) if kinds else None,
            collections=frozenset(collections) if collections else None,
            ids=frozenset(ids) if ids else None,
        )

    def for_task(self, task: Task) -> list[Instruction]:
        """Every instruction of the spec that applies to ``task``, filtered, ids unique."""
        chosen: list[Instruction] = []
        if "designer" in self.builtin:
            chosen.extend(builtin_instructions(task))
        chosen.extend(encoding_instruction(task, enc) for enc in self.encodings)
        name = base_task_name(task)
        own_type = task_type_code(task, self.records)
        for record in self.records:
            if record.task is not None:
                if record.task == name:
                    chosen.append(record)
            elif record.kind == "nonsense" or own_type is None or record.task_type == own_type:
                chosen.append(record)
        if self.kinds is not None:
            chosen = [i for i in chosen if i.kind in self.kinds]
        if self.collections is not None:
            chosen = [i for i in chosen if i.collection in self.collections]
        chosen = _unique_ids(chosen)
        return chosen if self.ids is None else [i for i in chosen if i.id in self.ids]


def _unique_ids(instructions: list[Instruction]) -> list[Instruction]:
    """Make ids unique per task by prefixing the collection when two sources collide."""
    seen: dict[str, int] = {}
    for instruction in instructions:
        seen[instruction.id] = seen.get(instruction.id, 0) + 1
    out = []
    for instruction in instructions:
        if seen[instruction.id] > 1:
            instruction = replace(instruction, id=f"{instruction.collection}:{instruction.id}")
        out.append(instruction)
    return out
