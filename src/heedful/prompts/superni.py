"""SuperNI prompt encodings, byte-for-byte as Tk-Instruct builds them.

Reproduces the source-string construction of ``DataCollatorForNI.__call__`` in
yizhongw/Tk-Instruct ``src/ni_collator.py``: an optional ``<task name>. ``, then
``Definition: ...\\n\\n``, positive and negative examples (each block starts with a space:
`` Positive Example 1 -``), and ``Now complete the following example -\\nInput: ...\\nOutput: ``.
Every text is stripped and gets a ``.`` unless it already ends in ASCII punctuation.

With a tokenizer and ``max_source_length``, demonstrations are added only while the prompt
fits, and a prompt still too long is cut to ``max_source_length`` tokens and decoded, as
the collator does. Its quirks are kept on purpose: the fit check joins the accepted
examples with a space while the prompt joins them with nothing, and the task name is not
counted.

This module also holds the dispatcher over every named encoding (SuperNI and Gupta's).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heedful.errors import HeedfulError
from heedful.prompts.gupta import GUPTA_ENCODINGS, encode_gupta
from heedful.tasks.types import Demonstration, Task


@dataclass(frozen=True)
class SuperNIEncoding:
    """Which instruction elements a SuperNI prompt carries (``DataCollatorForNI``'s flags)."""

    add_task_definition: bool = True
    num_pos_examples: int = 0
    num_neg_examples: int = 0
    add_explanation: bool = False
    add_task_name: bool = False

    def __post_init__(self) -> None:
        if self.num_pos_examples < 0 or self.num_neg_examples < 0:
            raise HeedfulError("SuperNI encoding: example counts must be at least 0")


# Named encodings: the ablation rows of Wang et al. 2022 (Table "instruction elements") and
# Tk-Instruct's src/create_exps.py. "def+pos2+expl" is the paper's "Def + Pos (2) + Neg (2)
# + Expl" (create_exps' instruct_pos_2_neg_2_explanation_input): explanations come with
# negative examples there, since a negative example is mostly its explanation.
SUPERNI_ENCODINGS: dict[str, SuperNIEncoding] = {
    "none": SuperNIEncoding(add_task_definition=False),
    "def": SuperNIEncoding(),
    "pos1": SuperNIEncoding(add_task_definition=False, num_pos_examples=1),
    "pos2": SuperNIEncoding(add_task_definition=False, num_pos_examples=2),
    "pos4": SuperNIEncoding(add_task_definition=False, num_pos_examples=4),
    "def+pos1": SuperNIEncoding(num_pos_examples=1),
    "def+pos2": SuperNIEncoding(num_pos_examples=2),
    "def+pos4": SuperNIEncoding(num_pos_examples=4),
    "def+pos2+neg2": SuperNIEncoding(num_pos_examples=2, num_neg_examples=2),
    "def+pos2+expl": SuperNIEncoding(num_pos_examples=2, num_neg_examples=2, add_explanation=True),
}

ENCODING_NAMES: tuple[str, ...] = (*SUPERNI_ENCODINGS, *GUPTA_ENCODINGS)


def _unknown(name: str) -> HeedfulError:
    return HeedfulError(f"unknown encoding '{name}'; expected one of {', '.join(ENCODING_NAMES)}")


def encode(task: Task, instance_input: str, encoding: str, **kw: Any) -> str:
    """Render ``instance_input`` of ``task`` with any named encoding in ``ENCODING_NAMES``.

    Keyword arguments go to :func:`encode_superni` or
    :func:`heedful.prompts.gupta.encode_gupta`.
    """
    if encoding in SUPERNI_ENCODINGS:
        return encode_superni(task, instance_input, encoding, **kw)
    if encoding in GUPTA_ENCODINGS:
        return encode_gupta(task, instance_input, with_instruction=GUPTA_ENCODINGS[encoding], **kw)
    raise _unknown(encoding)


def encode_superni(
    task: Task,
    instance_input: str,
    encoding: str | SuperNIEncoding = "def+pos2",
    *,
    add_task_name: bool = False,
    tokenizer: Any = None,
    max_source_length: int | None = None,
) -> str:
    """Render one instance as Tk-Instruct's ``DataCollatorForNI`` does.

    ``tokenizer`` is anything called as ``tokenizer(text)`` that returns token ids or a
    mapping with ``"input_ids"`` (a Hugging Face tokenizer), with ``decode(ids,
    skip_special_tokens=True)`` for the final cut. Without a tokenizer or a
    ``max_source_length`` no demonstration is dropped and nothing is cut.

    Demonstrations always carry an explanation field here (empty when the task file has
    none), so ``add_explanation`` writes `` Explanation: .`` for an empty one, as the
    collator does for an explanation that is present but empty.
    """
    if isinstance(encoding, str):
        if encoding not in SUPERNI_ENCODINGS:
            raise _unknown(encoding)
        encoding = SUPERNI_ENCODINGS[encoding]
    limit = max_source_length if tokenizer is not None else None

    def fits(text: str) -> bool:
        return limit is None or len(_token_ids(tokenizer, text)) <= limit

    task_input = _punctuate(f"Now complete the following example -\nInput: {instance_input.strip()}")
    task_input += "\nOutput: "
    task_name = f"{task.name}. " if add_task_name or encoding.add_task_name else ""
    definition = ""
    if encoding.add_task_definition:
        definition = _punctuate(f"Definition: {task.definition.strip()}") + "\n\n"

    positives: list[str] = []
    for number, demo in enumerate(task.positive_examples[: encoding.num_pos_examples], 1):
        block = _example_block("Positive", number, demo, encoding.add_explanation)
        if not fits(definition + " ".join(positives) + block + task_input):
            break
        positives.append(block)

    negatives: list[str] = []
    for number, demo in enumerate(task.negative_examples[: encoding.num_neg_examples], 1):
        block = _example_block("Negative", number, demo, encoding.add_explanation)
        if not fits(definition + " ".join(positives) + " ".join(negatives) + block + task_input):
            break
        negatives.append(block)

    source = task_name + definition + "".join(positives) + "".join(negatives) + task_input
    if limit is not None:
        ids = _token_ids(tokenizer, source)
        if len(ids) > limit:
            source = tokenizer.decode(ids[:limit], skip_special_tokens=True)
    return source


def _punctuate(text: str) -> str:
    """Append a period unless ``text`` already ends in ASCII punctuation."""
    return text if text[-1] in string.punctuation else text + "."


def _example_block(kind: str, number: int, demo: Demonstration, add_explanation: bool) -> str:
    block = _punctuate(f" {kind} Example {number} -\nInput: {demo.input.strip()}") + "\n"
    block = _punctuate(block + f" Output: {demo.output.strip()}") + "\n"
    if add_explanation:
        block = _punctuate(block + f" Explanation: {demo.explanation.strip()}") + "\n"
    return block + "\n"


def _token_ids(tokenizer: Any, text: str) -> list[int]:
    encoded = tokenizer(text)
    if isinstance(encoded, Mapping) or hasattr(encoded, "keys"):
        return list(encoded["input_ids"])
    return list(encoded)
