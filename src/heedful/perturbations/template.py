"""Templates as literal text and placeholders: the ground every text perturbation stands on.

Every function that returns an :class:`Instruction` gives it ``kind`` = the perturbation
name and ``params`` = the parameters, the seed and the source instruction's id (:func:`derived`),
so the result can be regenerated; the same seed always gives the same output.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import replace

from heedful.errors import HeedfulError
from heedful.prompts.instruction import Instruction
from heedful.tasks.types import Task

_FORMATTER = string.Formatter()


def pieces(template: str) -> list[tuple[str, str | None]]:
    """Split a template into ``(literal text, placeholder markup or None)`` pieces.

    Literal text comes back unescaped (``{{`` -> ``{``); :func:`join_pieces` escapes it again,
    so ``join_pieces(pieces(t)) == t`` for every well-formed template.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as err:
        raise HeedfulError(f"template has malformed braces ({err}): {template[:60]!r}") from None
    out = []
    for literal, name, spec, conversion in parsed:
        markup = None
        if name is not None:
            markup = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        out.append((literal, markup))
    if not out or out[-1][1] is not None:
        out.append(("", None))  # so the last literal is the text after the last placeholder
    return out


def join_pieces(pieces: Sequence[tuple[str, str | None]]) -> str:
    return "".join(lit.replace("{", "{{").replace("}", "}}") + (markup or "") for lit, markup in pieces)


def map_literals(template: str, fn: Callable[[list[str]], list[str]]) -> str:
    """Rewrite the literal parts of ``template`` with ``fn``; placeholders stay exactly."""
    parts = pieces(template)
    literals = fn([lit for lit, _ in parts])
    return join_pieces([(lit, markup) for lit, (_, markup) in zip(literals, parts)])


def with_perturbation(task: Task, record: dict[str, object]) -> dict[str, object]:
    """A copy of ``task.metadata`` with ``record`` appended to its ``perturbations`` list."""
    metadata = dict(task.metadata)
    metadata["perturbations"] = [*metadata.get("perturbations", ()), record]
    return metadata


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise HeedfulError(f"rate must be between 0 and 1, got {rate}")


def derived(instruction: Instruction, kind: str, template: str, tag: str, **params: object) -> Instruction:
    """A new instruction made from ``instruction``: new template, kind and provenance."""
    return replace(
        instruction,
        id=f"{instruction.id}~{tag}",
        template=template,
        kind=kind,
        origin=f"perturb:{kind}",
        params={"source_id": instruction.id, "source_kind": instruction.kind, **params},
    )


