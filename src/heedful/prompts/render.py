"""Render an instruction record for one example: the exact prompt and target.

Implements the rendering steps of docs/instruction-format.md one by one, so a prompt
is identical to the one the source release (InstructionEval, Sun et al. 2023) builds
for the same example and option order. The instance's options are used in the order
given: a loader that shuffles options has already recorded that in ``option_order``.
"""

from __future__ import annotations

import functools
import string

import regex

from heedful.errors import HeedfulError, PatternTimeoutError
from heedful.prompts.instruction import Instruction
from heedful.prompts.safe_format import MissingFieldError, safe_format
from heedful.prompts.types import RenderedExample
from heedful.tasks.types import Instance, Task

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALPACA_PREFIX = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n"
)
ALPACA_SUFFIX = "\n\n### Response:"
NUMBER_WORDS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)


OPTION_FIELD_KINDS = ("n_options", "n_options_word", "option_letters")
_ASCII_PUNCT = frozenset(string.punctuation)


# An ``extract`` pattern comes from a collection file, so it is untrusted input: the
# `regex` engine bounds each match in time. (RE2 matches in linear time but cannot run
# the negative lookaheads the released collections use.) Real patterns take microseconds.
EXTRACT_TIMEOUT_S = 1.0


@functools.lru_cache(maxsize=1024)
def compile_extract(pattern: str) -> regex.Pattern[str]:
    """An ``extract`` pattern compiled as every reader of it compiles it (``regex``, dot matches newline)."""
    return regex.compile(pattern, regex.S)


class _Unfit(Exception):
    """The instruction cannot render this example; the caller adds who and where."""


def render_instruction(instruction: Instruction, task: Task, instance: Instance) -> RenderedExample:
    """Render ``instruction`` for ``instance`` of ``task``.

    Returns the prompt, ``references`` = (target,), and for choice instances the
    rank-classification ``choices`` (the target each option would have if it were gold)
    with ``gold`` indexing them. Raises ``HeedfulError`` naming the instruction, its
    origin and the instance when the record does not fit the example (input not matching
    ``extract``, more options than letters, a placeholder without a value, a gold label
    missing from ``label_map``).
    """
    try:
        prompt = _prompt(instruction, instance)
        references, choices, gold = _targets(instruction, instance)
    except _Unfit as exc:
        origin = f" ({instruction.origin})" if instruction.origin else ""
        raise HeedfulError(
            f"instruction '{instruction.id}'{origin} cannot render instance '{instance.id}' of task '{task.name}': {exc}"
        ) from None
    except TimeoutError:
        raise PatternTimeoutError(
            f"{instruction.origin or 'instruction'}: instruction '{instruction.id}': its 'extract' pattern ran over "
            f"{EXTRACT_TIMEOUT_S:g} s on instance '{instance.id}' of task '{task.name}' (catastrophic backtracking?)"
        ) from None
    return RenderedExample(
        task=task.name,
        instance_id=instance.id,
        prompt=prompt,
        references=references,
        choices=choices,
        gold=gold,
    )


def _options(instruction: Instruction, instance: Instance) -> tuple[str, ...] | None:
    return instruction.fixed_options if instruction.fixed_options is not None else instance.options


def _prompt(instruction: Instruction, instance: Instance) -> str:
    opts = _options(instruction, instance)
    fields: dict[str, str] = {"input": instance.input}

    if instruction.extract is not None:
        match = compile_extract(instruction.extract).fullmatch(instance.input, timeout=EXTRACT_TIMEOUT_S)
        if match is None:
            raise _Unfit("the input does not have the shape the instruction expects (no match for 'extract')")
        fields.update({k: v for k, v in match.groupdict().items() if v is not None})

    needs_options = (
        instruction.options is not None
        or instruction.choice_fields is not None
        or any(kind in OPTION_FIELD_KINDS for kind in (instruction.extra_fields or {}).values())
    )
    if needs_options and opts is None:
        raise _Unfit("the instruction shows options but the instance has none")

    spec = instruction.options
    if spec is not None:
        if len(opts) > len(spec.letters):
            raise _Unfit(f"{len(opts)} options but only {len(spec.letters)} letters '{spec.letters}'")
        items = [
            safe_format(spec.item, {"letter": spec.letters[i], "text": text, "index": str(i + 1)})
            for i, text in enumerate(opts)
        ]
        fields[spec.field] = spec.prefix + spec.sep.join(items) + spec.suffix

    if instruction.choice_fields is not None:
        if len(opts) > len(LETTERS):
            raise _Unfit(f"{len(opts)} options but only {len(LETTERS)} letters for 'choice_fields'")
        for i, text in enumerate(opts):
            fields[safe_format(instruction.choice_fields, {"letter": LETTERS[i], "index": str(i + 1)})] = text

    for name, kind in (instruction.extra_fields or {}).items():
        if kind == "input_period":
            # Computed from the input field as extract left it (e.g. stripped).
            fields[name] = "" if fields["input"].rstrip()[-1:] in _ASCII_PUNCT else "."
        else:
            fields[name] = _extra_field(kind, len(opts))

    try:
        prompt = safe_format(instruction.template, fields)
    except MissingFieldError as exc:
        n = f"{len(opts)} options" if opts is not None else "no options"
        raise _Unfit(f"placeholder {{{exc.field}}} has no value for this instance ({n})") from None

    if instruction.wrapper == "alpaca":
        prompt = ALPACA_PREFIX + prompt + ALPACA_SUFFIX
    return prompt


def _extra_field(kind: str, n: int) -> str:
    if kind == "n_options":
        return str(n)
    if kind == "n_options_word":
        if not 1 <= n <= len(NUMBER_WORDS):
            raise _Unfit(f"no number word for {n} options (n_options_word covers one to twenty)")
        return NUMBER_WORDS[n - 1]
    if kind == "option_letters":
        if n > len(LETTERS):
            raise _Unfit(f"{n} options but only {len(LETTERS)} letters for 'option_letters'")
        return ", ".join("'" + LETTERS[i] + "'" for i in range(n))
    raise _Unfit(f"unknown extra field kind '{kind}'")


def _targets(
    instruction: Instruction, instance: Instance
) -> tuple[tuple[str, ...], tuple[str, ...] | None, int | None]:
    """(references, choices, gold) of the example under this instruction."""
    label_map = instruction.label_map
    if instance.options is None:
        # Open-ended instance: the target is its reference text (mapped, if a map is given).
        if instruction.answer == "letter":
            raise _Unfit("the instruction answers with a letter but the instance has no options")
        if not instance.references:
            raise _Unfit("the instance has neither options nor references")
        refs = tuple(_mapped(label_map, r) for r in instance.references) if label_map is not None else instance.references
        return refs, None, None

    if instance.gold is None or not 0 <= instance.gold < len(instance.options):
        raise _Unfit("the instance has options but no valid gold index")
    gold_text = instance.options[instance.gold]
    opts = _options(instruction, instance)
    if instruction.fixed_options is not None:
        if gold_text not in opts:
            raise _Unfit(f"gold option {gold_text!r} is not among the fixed options {list(opts)}")
        gold = opts.index(gold_text)
    else:
        # The gold index itself, not options.index(gold_text): identical for distinct
        # options, and right when an instance repeats an option text.
        gold = instance.gold

    if label_map is not None:
        target = _mapped(label_map, gold_text)
        # Every option needs a mapped candidate: an unmapped one would be scored as a
        # string the instruction never asks for.
        choices = tuple(_mapped(label_map, o, "option") for o in opts)
    elif instruction.answer == "letter":
        letters = instruction.options.letters if instruction.options is not None else LETTERS
        if len(opts) > len(letters):
            raise _Unfit(f"{len(opts)} options but only {len(letters)} answer letters '{letters}'")
        choices = tuple(letters[: len(opts)])
        target = choices[gold]
    else:
        choices = tuple(opts)
        target = gold_text
    return (target,), choices, gold


def _mapped(label_map: dict[str, str], text: str, what: str = "gold label") -> str:
    try:
        return label_map[text]
    except KeyError:
        raise _Unfit(f"{what} {text!r} is missing from label_map (keys: {sorted(label_map)})") from None
