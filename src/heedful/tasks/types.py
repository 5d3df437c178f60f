"""The domain model every other part of heedful passes around."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# Every task's instances fall in these splits (SuperNI: test = first 100, val = next 10, train = the rest).
SPLITS: tuple[str, ...] = ("test", "val", "train")


class TaskType(str, enum.Enum):
    """How a task's answer is produced and scored."""

    MULTIPLE_CHOICE = "multiple_choice"  # per-instance options (BIG-bench target_scores, MMLU)
    CLASSIFICATION = "classification"  # closed label space shared by all instances
    GENERATION = "generation"  # open text, scored with exact match / ROUGE-L


@dataclass(frozen=True)
class Demonstration:
    """A worked example shown in a prompt (SuperNI positive/negative examples)."""

    input: str
    output: str
    explanation: str = ""


@dataclass(frozen=True)
class Instance:
    """One evaluated or trained-on example.

    ``options``/``gold`` are set for choice tasks: ``gold`` indexes ``options``.
    ``option_order`` records, for shuffled options, the index each option had in the
    source file (``options[i] == file_options[option_order[i]]``).
    ``split`` is ``test``, ``val`` or ``train``.
    """

    id: str
    input: str
    references: tuple[str, ...]
    options: tuple[str, ...] | None = None
    gold: int | None = None
    option_order: tuple[int, ...] | None = None
    split: str = "test"

    @property
    def gold_text(self) -> str | None:
        if self.options is None or self.gold is None:
            return None
        return self.options[self.gold]


@dataclass(frozen=True)
class BigBenchFormat:
    """BIG-bench JSON task prompt settings, with BIG-bench's own defaults."""

    task_prefix: str = ""
    example_input_prefix: str = "\nQ: "
    example_output_prefix: str = "\nA: "
    choice_prefix: str = "\n  choice: "
    append_choices_to_input: bool = True


@dataclass
class Task:
    """A benchmark task: its instruction material, label space and instances.

    ``metric`` is the task's preferred metric: ``accuracy``, ``exact_match`` or ``rougeL``.
    ``source`` names the loader (``superni``, ``bigbench``, ``mmlu``, ``jsonl``, ``lmeval``; an ``hf:`` card sets its own).
    """

    name: str
    type: TaskType
    instances: list[Instance]
    definition: str = ""
    category: str = ""
    positive_examples: tuple[Demonstration, ...] = ()
    negative_examples: tuple[Demonstration, ...] = ()
    label_space: tuple[str, ...] | None = None
    metric: str = "exact_match"
    source: str = ""
    bigbench_format: BigBenchFormat | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Instance]:
        """Instances of one split (``test``, ``val``, ``train``) in file order."""
        return [inst for inst in self.instances if inst.split == name]
