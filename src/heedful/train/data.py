"""Training data: render instances into (source, target) pairs, tokenise, batch, collate.

Source and target are tokenised separately and concatenated, so the model is trained on
exactly the token boundary it sees at evaluation time (prompt tokens, then generated
tokens). Loss falls on output tokens only: for a causal model the labels are -100 over
the source; for a seq2seq model the labels are the target.

Batches are length-grouped the way transformers' ``LengthGroupedSampler`` does it (a
seeded shuffle, mega-batches sorted by length, mega-batch order shuffled again) but the
order is a pure function of ``(seed, epoch)``, so a resumed run replays it exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from heedful.errors import HeedfulError
from heedful.prompts.demos import continuation_strings
from heedful.prompts.instruction import Instruction
from heedful.prompts.render import render_instruction
from heedful.prompts.superni import SUPERNI_ENCODINGS, encode
from heedful.tasks.types import Instance, Task

IGNORE_INDEX = -100

# One rendering hook for prompt perturbations (Kung & Peng 2023): it receives a task and
# returns the task to render prompts from (e.g. with a simplified definition).
TaskTransform = Callable[[Task], Task]


@dataclass(frozen=True)
class TrainExample:
    """One training pair: the rendered prompt and the reference output."""

    task: str
    instance_id: str
    source: str
    target: str
    instruction_id: str = ""


@dataclass(frozen=True)
class Features:
    """Token ids of one example; ``labels`` already carry -100 where no loss is taken."""

    input_ids: list[int]
    labels: list[int]


def render_examples(
    task: Task,
    instances: Sequence[Instance],
    encoding: str = "def+pos2",
    *,
    tokenizer: Any = None,
    max_source_length: int | None = None,
    transform: TaskTransform | None = None,
) -> list[TrainExample]:
    """Render ``instances`` of ``task`` with a named prompt encoding.

    SuperNI encodings get the tokenizer and ``max_source_length`` so demonstrations are
    dropped while the prompt does not fit, as Tk-Instruct's collator does. The target is
    the instance's first reference (SuperNI keeps one per instance).
    """
    shown = transform(task) if transform is not None else task
    kwargs: dict[str, Any] = {}
    if encoding in SUPERNI_ENCODINGS and tokenizer is not None:
        kwargs = {"tokenizer": tokenizer, "max_source_length": max_source_length}
    examples = []
    for inst in instances:
        if not inst.references:
            raise HeedfulError(f"task {task.name}: instance {inst.id} has no reference output to train on")
        source = encode(shown, inst.input, encoding, **kwargs)
        examples.append(TrainExample(task.name, inst.id, source, inst.references[0]))
    return examples


def render_instruction_groups(
    task: Task, instances: Sequence[Instance], instructions: Sequence[Instruction]
) -> list[list[TrainExample]]:
    """One group per instance: its prompt under every instruction, the first one first.

    Prompts are rendered exactly as the evaluation engine renders them (instruction
    collections, built-in phrasings, SuperNI encodings), and the target is the string the
    evaluation scores after the prompt, so training and evaluation see the same tokens.
    Sun et al. 2023 align paraphrased instructions to a reference one; the first
    instruction of each group is that reference.
    """
    groups = []
    for inst in instances:
        group = []
        for instruction in instructions:
            example = render_instruction(instruction, task, inst)
            if not example.references:
                raise HeedfulError(f"task {task.name}: instance {inst.id} has no reference output to train on")
            [target] = continuation_strings(example.prompt, example.references[:1])
            group.append(TrainExample(task.name, inst.id, example.prompt, target, instruction.id))
        groups.append(group)
    return groups


def flatten_groups(grouped: Sequence[Sequence[TrainExample]]) -> tuple[list[TrainExample], list[list[int]]]:
    """The examples of all groups in one list, and each group as indices into it."""
    examples: list[TrainExample] = []
    groups: list[list[int]] = []
    for group in grouped:
        groups.append(list(range(len(examples), len(examples) + len(group))))
        examples.extend(group)
    return examples, groups


def tokenize_example(
    example: TrainExample,
    tokenizer: Any,
    *,
    is_seq2seq: bool,
    max_source_length: int = 1024,
    max_target_length: int = 128,
    add_bos: bool = False,
) -> Features:
    """Token ids and labels of one example (target ends with EOS, within ``max_target_length``).

    A causal source longer than ``max_source_length`` keeps its last tokens: the instance
    input and the ``Output:`` cue are at the end of every encoding.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise HeedfulError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no EOS token to end targets")
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"][: max_target_length - 1] + [eos]
    if is_seq2seq:
        # T5's tokenizer appends EOS itself; truncate as Tk-Instruct's collator does (right side).
        source = tokenizer(example.source, add_special_tokens=True)["input_ids"][:max_source_length]
        return Features(source, target)
    source = tokenizer(example.source, add_special_tokens=False)["input_ids"]
    if add_bos and tokenizer.bos_token_id is not None:
        source = [tokenizer.bos_token_id, *source]
    source = source[-max_source_length:]
    return Features(source + target, [IGNORE_INDEX] * len(source) + target)


def tokenize_all(examples: Sequence[TrainExample], tokenizer: Any, **kwargs: Any) -> list[Features]:
    """:func:`tokenize_example` over a list."""
    return [tokenize_example(ex, tokenizer, **kwargs) for ex in examples]


def example_length(features: Features, is_seq2seq: bool) -> int:
    """Tokens an example puts through the model (encoder + decoder for seq2seq)."""
    if is_seq2seq:
        return len(features.input_ids) + len(features.labels)
    return len(features.input_ids)


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group: bool = True, mega_factor: int = 50
) -> list[list[int]]:
    """Index batches of one epoch, a pure function of ``(seed, epoch)``.

    With ``group`` the indices are shuffled, cut into mega-batches of ``mega_factor *
    batch_size`` sorted by length (longest first) so each batch pads little, and the batch
    order is shuffled so lengths do not trend over the epoch.
    """
    if batch_size < 1:
        raise HeedfulError(f"batch size must be at least 1, got {batch_size}")
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group:
        mega = batch_size * mega_factor
        order = [
            i
            for start in range(0, len(order), mega)
            for i in sorted(order[start : start + mega], key=lambda j: -lengths[j])
        ]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group:
        rng.shuffle(batches)
    return batches


@dataclass
class Collator:
    """Pads a list of :class:`Features` to the longest in the batch (dynamic padding).

    Causal batches are right-padded (``input_ids``, ``attention_mask``, ``labels``);
    seq2seq batches pad the encoder input and the labels separately.
    """

    pad_token_id: int
    is_seq2seq: bool
    pad_to_multiple_of: int | None = None

    def _width(self, n: int) -> int:
        m = self.pad_to_multiple_of
        return n if not m else ((n + m - 1) // m) * m

    def __call__(self, batch: Sequence[Features]) -> dict[str, torch.Tensor]:
        width = self._width(max(len(f.input_ids) for f in batch))
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, f in enumerate(batch):
            input_ids[row, : len(f.input_ids)] = torch.tensor(f.input_ids)
            attention[row, : len(f.input_ids)] = 1
        label_width = self._width(max(len(f.labels) for f in batch)) if self.is_seq2seq else width
        labels = torch.full((len(batch), label_width), IGNORE_INDEX, dtype=torch.long)
        for row, f in enumerate(batch):
            labels[row, : len(f.labels)] = torch.tensor(f.labels)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
