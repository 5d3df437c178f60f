"""A restricted ``str.format`` for untrusted templates.

Instruction templates come from files users download or generate (paraphrases), so they
are data, never code. ``str.format`` would let a template reach attributes and items of
the values it is given (``{x.__class__}``, ``{x[0]}``) and run format specs; here a
template may only hold plain named fields ``{name}`` and doubled braces ``{{``/``}}``.
Everything else is rejected when the template is checked (at collection load time),
and rendering is plain string concatenation of the parsed pieces.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping

_PARSER = string.Formatter()
# One placeholder in a template's text: ``{name}`` (with an optional conversion or format
# spec), not part of an escaped ``{{`` / ``}}``.
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{[A-Za-z_][A-Za-z0-9_]*(?:![rsa])?(?::[^{}]*)?\}(?!\})")


class MissingFieldError(KeyError):
    """A template placeholder that has no value; ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field

    def __str__(self) -> str:  # KeyError's default str() is the repr of the key
        return f"no value for placeholder {{{self.field}}}"


@functools.lru_cache(maxsize=4096)
def _parse(template: str) -> tuple[tuple[str, str | None], ...]:
    """Split ``template`` into ``(literal, field_name_or_None)`` pieces, validating it."""
    if not isinstance(template, str):
        raise ValueError(f"template must be a string, not {type(template).__name__}")
    try:
        parsed = list(_PARSER.parse(template))
    except ValueError as exc:  # unbalanced braces: "Single '}' encountered ..."
        raise ValueError(f"malformed braces ({exc}); write literal braces as '{{{{' and '}}}}'") from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None))
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name == "" or name.isdigit():
            raise ValueError(f"positional placeholder {shown} is not allowed; use a name like {{input}}")
        if conversion:
            raise ValueError(f"conversion in placeholder {shown} is not allowed")
        if spec:
            raise ValueError(f"format spec in placeholder {shown} is not allowed")
        if "." in name or "[" in name:
            raise ValueError(f"attribute or index access in placeholder {shown} is not allowed")
        if not name.isidentifier():
            raise ValueError(f"placeholder {shown} is not a plain name (letters, digits, '_')")
        pieces.append((literal, name))
    return tuple(pieces)


def template_fields(template: str) -> set[str]:
    """The placeholder names of ``template``; raises ``ValueError`` if it is not a safe template."""
    return {name for _, name in _parse(template) if name is not None}


def safe_format(template: str, fields: Mapping[str, str]) -> str:
    """Fill ``template``'s placeholders from ``fields``.

    Raises ``ValueError`` for an unsafe template and ``MissingFieldError`` (a ``KeyError``)
    naming the first placeholder without a value. Values are inserted verbatim.
    """
    out: list[str] = []
    for literal, name in _parse(template):
        out.append(literal)
        if name is not None:
            try:
                value = fields[name]
            except KeyError:
                raise MissingFieldError(name) from None
            out.append(str(value))
    return "".join(out)


def escape_braces(text: str) -> str:
    """Make literal text safe to embed in a template: double every brace."""
    return text.replace("{", "{{").replace("}", "}}")
