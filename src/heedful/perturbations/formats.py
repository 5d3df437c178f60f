"""A checked grammar of plausible prompt layouts for choice tasks (FormatSpread).

Sclar et al. 2024 (*Quantifying Language Models' Sensitivity to Spurious Features in
Prompt Design*, ICLR; code: msclar/formatspread) show that meaning-preserving layout
choices -- how field names are cased, what separates a name from its value, what
separates fields, how options are enumerated -- move accuracy by many points. This
module spans such layouts with a small grammar, so a spread over formats can be measured
with the same instruction text:

* ``casing``: the descriptors ``Question`` / ``Options`` / ``Answer`` in title, upper or
  lower case;
* ``separator``: between a descriptor and its value (``": "``, ``":\\n"``, ...);
* ``space``: between fields (``"\\n"``, ``"\\n\\n"``, ``" "``, ``" || "``);
* ``enumerator``: how options are listed (``A.``, ``(A)``, ``a)``, ``1.`` one per line,
  or ``(A)`` inline).

A :class:`Format` becomes an ordinary collection record (:func:`format_instruction`), so
it goes through the same validation, renderer and scoring as every other instruction.
Options are answered by their enumerator's marker (``answer: "letter"`` with the
enumerator's ``letters``): ``C``, ``c`` or ``3``. Numbered options support at most nine
options (one character per marker); rendering more raises ``HeedfulError``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from heedful.errors import HeedfulError
from heedful.prompts.instruction import Instruction, OptionsSpec
from heedful.prompts.safe_format import escape_braces

KIND = "format"
COLLECTION = "formats"
DESCRIPTORS = ("Question", "Options", "Answer")
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The same input stripping as the built-in MMLU prompt: stray whitespace in the input
# would otherwise blur the field boundaries the format is about.
_STRIP_INPUT = r"\s*(?P<input>.*?)\s*"


@dataclass(frozen=True)
class _Enumerator:
    slug: str
    item: str  # OptionsSpec.item
    letters: str
    inline: bool  # all options on one line, else one per line
    words: str  # for describe()


_ENUMERATORS: dict[str, _Enumerator] = {
    "A.": _Enumerator("upper_dot", "{letter}. {text}", UPPER, False, "'A. ' one per line"),
    "(A)": _Enumerator("upper_paren", "({letter}) {text}", UPPER, False, "'(A) ' one per line"),
    "a)": _Enumerator("lower_rparen", "{letter}) {text}", UPPER.lower(), False, "'a) ' one per line"),
    "1.": _Enumerator("number_dot", "{letter}. {text}", "123456789", False, "'1. ' one per line (at most 9)"),
    "(A) inline": _Enumerator("upper_paren_inline", "({letter}) {text}", UPPER, True, "'(A) ' on one line"),
}
_CASINGS = {"title": str.title, "upper": str.upper, "lower": str.lower}
_SEPARATORS = {": ": "colon", ":\n": "colon_nl", " - ": "dash", " = ": "equals", ":: ": "dcolon"}
_SPACES = {"\n": "nl", "\n\n": "blank", " ": "sp", " || ": "bars"}

# Each field's values in a fixed order; the first value of each is the default format's.
FORMAT_GRAMMAR: Mapping[str, tuple[str, ...]] = {
    "casing": tuple(_CASINGS),
    "separator": tuple(_SEPARATORS),
    "space": tuple(_SPACES),
    "enumerator": tuple(_ENUMERATORS),
}


@dataclass(frozen=True)
class Format:
    """One prompt layout: values from :data:`FORMAT_GRAMMAR` (see :func:`check_format`)."""

    casing: str = "title"
    separator: str = ": "
    space: str = "\n"
    enumerator: str = "A."

    @property
    def id(self) -> str:
        """A short stable slug, e.g. ``title-colon-nl-upper_dot``."""
        check_format(self)
        return "-".join(
            (self.casing, _SEPARATORS[self.separator], _SPACES[self.space], _ENUMERATORS[self.enumerator].slug)
        )

    def describe(self) -> str:
        """One line for people, e.g. ``Title-case descriptors, ': ' after each, ...``."""
        check_format(self)
        return (
            f"{self.casing.title()}-case descriptors, {self.separator!r} after each, fields split by "
            f"{self.space!r}, options as {_ENUMERATORS[self.enumerator].words}"
        )


DEFAULT_FORMAT = Format()


def check_format(fmt: Format) -> None:
    """Raise ``HeedfulError`` (one line) unless ``fmt`` is a plausible layout of the grammar."""
    for name, values in FORMAT_GRAMMAR.items():
        value = getattr(fmt, name)
        if value not in values:
            raise HeedfulError(f"format {name} {value!r} is not one of {', '.join(repr(v) for v in values)}")
    # A field boundary must be at least as strong as the boundaries inside a field (the
    # kind of plausibility constraint FormatSpread's grammar adds): "Question:\nq Options:\n..."
    # reads as if each descriptor belonged to the previous value.
    if "\n" in fmt.separator and "\n" not in fmt.space:
        raise HeedfulError(
            f"format: separator {fmt.separator!r} breaks the line inside a field but space {fmt.space!r} "
            "does not break it between fields"
        )
    # Options one per line followed by a plain space: the last option's text runs into the
    # Answer descriptor ("B. blue Answer:"), so where the option ends is ambiguous.
    if not _ENUMERATORS[fmt.enumerator].inline and fmt.space == " ":
        raise HeedfulError(
            f"format: options {fmt.enumerator!r} one per line need a space with a newline or a delimiter, "
            "not ' ' (the last option would run into the Answer descriptor)"
        )


def all_formats() -> tuple[Format, ...]:
    """Every checked format, in grammar order (:data:`DEFAULT_FORMAT` first)."""
    out = []
    for values in itertools.product(*FORMAT_GRAMMAR.values()):
        fmt = Format(**dict(zip(FORMAT_GRAMMAR, values, strict=True)))
        try:
            check_format(fmt)
        except HeedfulError:
            continue
        out.append(fmt)
    return tuple(out)


def sample_formats(n: int, seed: int) -> tuple[Format, ...]:
    """``n`` distinct formats, :data:`DEFAULT_FORMAT` first, the rest drawn with ``seed``.

    One seeded shuffle of the non-default formats, cut at ``n - 1``: the same ``seed``
    gives the same list in every process, and a smaller ``n`` a prefix of a larger one.
    """
    formats = all_formats()
    if not 1 <= n <= len(formats):
        raise HeedfulError(f"cannot sample {n} formats: the grammar has {len(formats)} (need 1 to {len(formats)})")
    rest = [f for f in formats if f != DEFAULT_FORMAT]
    # random.Random with an int seed does not depend on PYTHONHASHSEED.
    random.Random(seed).shuffle(rest)
    return (DEFAULT_FORMAT, *rest[: n - 1])


def format_instruction(
    text: str,
    fmt: Format,
    *,
    task_name: str | None = None,
    answer: str = "letter",
    task_type: str | None = "QA",
) -> Instruction:
    """The instruction ``text`` laid out as ``fmt``: instruction, Question, Options, Answer.

    ``text`` is literal (its braces are escaped); an empty ``text`` leaves the layout
    alone. The model answers after the Answer descriptor and separator (trailing spaces
    dropped: the scorer puts a space before the answer). ``answer`` ``letter`` answers with
    the enumerator's marker, ``text`` with the option text.
    """
    check_format(fmt)
    if answer not in ("letter", "text"):
        raise HeedfulError(f"format instruction: answer {answer!r} is not 'letter' or 'text'")
    enum = _ENUMERATORS[fmt.enumerator]
    question, options, answer_word = (_CASINGS[fmt.casing](d) for d in DESCRIPTORS)
    if enum.inline:
        options_head, item_sep = fmt.separator, " "
    else:
        head = fmt.separator.rstrip(" ")
        options_head, item_sep = (head if head.endswith("\n") else head + "\n"), "\n"
    instruction = escape_braces(text.strip())
    template = (
        (instruction + fmt.space if instruction else "")
        + question + fmt.separator + "{input}" + fmt.space
        + options + options_head + "{options}" + fmt.space
        + answer_word + fmt.separator.rstrip(" ")
    )
    return Instruction(
        id=f"format/{fmt.id}",
        template=template,
        kind=KIND,
        collection=COLLECTION,
        task=task_name,
        task_type=task_type,
        extract=_STRIP_INPUT,
        options=OptionsSpec(field="options", item=enum.item, sep=item_sep, letters=enum.letters),
        answer=answer,
        origin=f"builtin:format:{fmt.id}",
        params=asdict(fmt),
    )
