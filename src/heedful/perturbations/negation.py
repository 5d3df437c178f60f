"""Negated instructions (Sun et al. 2023, section 4.3).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from heedful.errors import HeedfulError
from heedful.perturbations.template import derived, join_pieces, pieces
from heedful.prompts.instruction import Instruction

# The answer cue that ends many observed templates ("The answer is:", "A:", "Output:").
_ANSWER_CUE = re.compile(r"(?<![A-Za-z])(?:[Tt]he answer(?: is)?\s*:?|(?:Answer|A|Output)\s*:)(\s*)$")
SUN_NEGATION_CUE = "The answer is not:"
OPPOSITE_SENTENCE = "Answer the opposite of the correct answer."
# Hand-written negations of Sun et al.'s multi-class records, as lexical rules: the first
# rule that matches anywhere in the literal text is applied once.
_LEXICAL_RULES: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        "correct->incorrect",
        re.compile(r"\b([Cc])orrect answer\b"),
        lambda m: ("I" if m[1] == "C" else "i") + "ncorrect answer",
    ),
    ("belong->does not belong", re.compile(r"\bbelongs?\b"), lambda m: "does not belong"),
    ("is/are->is/are not", re.compile(r"\b(is|are)\b(?= (?!not\b)[A-Za-z])"), lambda m: f"{m[1]} not"),
)
_IMPERATIVES = frozenset(
    "answer choose classify decide determine find generate give identify label output pick "
    "predict provide read respond return say select solve tell translate write".split()
)
_SENTENCE_START = re.compile(r"(?:^|(?<=[.!?:]\s)|(?<=\n))([A-Z][a-z]+)\b")
NEGATION_STYLES = ("sun", "opposite", "general")


def _negate_sun(literals: list[str]) -> tuple[list[str], str]:
    last = literals[-1]
    match = _ANSWER_CUE.search(last)
    if match and last.strip():
        literals[-1] = last[: match.start()] + SUN_NEGATION_CUE + match.group(1)
        return literals, "replace-cue"
    literals[-1] = last + "\n" + SUN_NEGATION_CUE
    return literals, "append-cue"


def _negate_opposite(literals: list[str]) -> tuple[list[str], str]:
    for s, lit in enumerate(literals):
        if "?" in lit:
            i = lit.index("?") + 1
            # Spaces left dangling before a line break go, as in Sun et al.'s records.
            rest = re.sub(r"^[ \t]+(?=\n)", "", lit[i:])
            literals[s] = lit[:i] + " " + OPPOSITE_SENTENCE + rest
            return literals, "after-question"
    match = _ANSWER_CUE.search(literals[-1])
    if match and literals[-1].strip():
        literals[-1] = literals[-1][: match.start()] + OPPOSITE_SENTENCE + " " + literals[-1][match.start() :]
        return literals, "before-cue"
    literals[-1] = literals[-1] + "\n" + OPPOSITE_SENTENCE
    return literals, "append"


def _negate_general(literals: list[str]) -> tuple[list[str], str]:
    for name, pattern, repl in _LEXICAL_RULES:
        for s, lit in enumerate(literals):
            if pattern.search(lit):
                literals[s] = pattern.sub(repl, lit, count=1)
                return literals, name
    for s, lit in enumerate(literals):
        for match in _SENTENCE_START.finditer(lit):
            if match[1].lower() in _IMPERATIVES:
                literals[s] = lit[: match.start(1)] + "Do not " + match[1].lower() + lit[match.end(1) :]
                return literals, "do-not"
    literals, _ = _negate_opposite(literals)
    return literals, "opposite"


def negated(instruction: Instruction, *, style: str = "sun") -> Instruction:
    """Ask for the opposite of the task, keeping the rest of the instruction.

    Sun et al. negate their *closest* observed instructions by hand; the styles here
    reproduce their three constructions as rules (checked against their released
    records of ``kind: negated``):

    * ``sun``: the QA construction. A trailing answer cue (``The answer is:``,
      ``The answer:``, ``A:``, ``Answer:``, ``Output:``) becomes ``The answer is not:``;
      without one, ``\\nThe answer is not:`` is appended.
    * ``opposite``: the binary-classification construction. ``Answer the opposite of the
      correct answer.`` goes right after the first question mark, else before the
      trailing answer cue, else at the end.
    * ``general``: lexical negation as in their multi-class records, first rule that
      applies: ``correct answer`` -> ``incorrect answer``; ``belongs`` -> ``does not
      belong``; the first ``is``/``are`` before a word gets ``not``; a leading imperative
      verb (``Answer``, ``Choose``, ``Classify``...) becomes ``Do not answer``...; else the
      ``opposite`` sentence.

    Only literal text changes; ``params['rule']`` records which rule applied.
    """
    negate = {"sun": _negate_sun, "opposite": _negate_opposite, "general": _negate_general}.get(style)
    if negate is None:
        raise HeedfulError(f"unknown negation style '{style}'; expected one of {', '.join(NEGATION_STYLES)}")
    parts = pieces(instruction.template)
    literals, rule = negate([lit for lit, _ in parts])
    template = join_pieces([(lit, markup) for lit, (_, markup) in zip(literals, parts)])
    return derived(instruction, "negated", template, f"negated({style})", style=style, rule=rule)


# ---------------------------------------------------------------------------------------
# Nonsense and incorrect instructions (Sun et al. 2023, section 4.3)
# ---------------------------------------------------------------------------------------

# Sun et al.'s five "nonsensical" control instructions, as released with their collection
# (jiudingsun01/InstructionEval, ids BBL/Random/1-5), verbatim including their spelling.
