"""Model-free instruction perturbations: pure, seeded functions that record their provenance.

* Kung & Peng 2023 ("Do Models Really Learn to Follow Instructions?"): *simplified task
  definitions* that keep only the output space, and *delusive demonstrations* whose
  input-output mapping is wrong.
* Sun et al. 2023 ("Evaluating the Zero-shot Robustness of Instruction-tuned Language
  Models"), section 4.3: *negated*, *incorrect* and *nonsense* instructions.
* Surface noise on the instruction text (word drops and shuffles as in Gu et al. 2023;
  character typos as PromptBench's DeepWordBug attack), never touching ``{placeholders}``.

Every function that returns an :class:`Instruction` gives it ``kind`` = the perturbation
name and ``params`` = the parameters, the seed and the source instruction's id, so the
result can be regenerated; the same seed always gives the same output. Perturbations
that need a model (closest-by-embedding, paraphrases) live elsewhere.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.instructions.types import Instruction
from heedful.tasks.types import Demonstration, Task

# ---------------------------------------------------------------------------------------
# Templates: literal text and placeholders
# ---------------------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def _pieces(template: str) -> list[tuple[str, str | None]]:
    """Split a template into ``(literal text, placeholder markup or None)`` pieces.

    Literal text comes back unescaped (``{{`` -> ``{``); :func:`_join` escapes it again,
    so ``_join(_pieces(t)) == t`` for every well-formed template.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as err:
        raise HeedfulError(f"template has malformed braces ({err}): {template[:60]!r}") from None
    pieces = []
    for literal, name, spec, conversion in parsed:
        markup = None
        if name is not None:
            markup = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        pieces.append((literal, markup))
    if not pieces or pieces[-1][1] is not None:
        pieces.append(("", None))  # so the last literal is the text after the last placeholder
    return pieces


def _join(pieces: Sequence[tuple[str, str | None]]) -> str:
    return "".join(lit.replace("{", "{{").replace("}", "}}") + (markup or "") for lit, markup in pieces)


def _map_literals(template: str, fn: Callable[[list[str]], list[str]]) -> str:
    """Rewrite the literal parts of ``template`` with ``fn``; placeholders stay exactly."""
    pieces = _pieces(template)
    literals = fn([lit for lit, _ in pieces])
    return _join([(lit, markup) for lit, (_, markup) in zip(literals, pieces)])


def _with_perturbation(task: Task, record: dict[str, object]) -> dict[str, object]:
    """A copy of ``task.metadata`` with ``record`` appended to its ``perturbations`` list."""
    metadata = dict(task.metadata)
    metadata["perturbations"] = [*metadata.get("perturbations", ()), record]
    return metadata


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise HeedfulError(f"rate must be between 0 and 1, got {rate}")


def _derived(instruction: Instruction, kind: str, template: str, tag: str, **params: object) -> Instruction:
    """A new instruction made from ``instruction``: new template, kind and provenance."""
    return replace(
        instruction,
        id=f"{instruction.id}~{tag}",
        template=template,
        kind=kind,
        origin=f"perturb:{kind}",
        params={"source_id": instruction.id, "source_kind": instruction.kind, **params},
    )


# ---------------------------------------------------------------------------------------
# Surface noise
# ---------------------------------------------------------------------------------------

_WS = re.compile(r"(\s+)")


def _words(literals: list[str]) -> tuple[list[list[str]], list[tuple[int, int]]]:
    """Tokenise each literal into alternating [word, space, word, ...]; index the words."""
    tokens = [_WS.split(lit) for lit in literals]
    index = [(s, i) for s, toks in enumerate(tokens) for i, tok in enumerate(toks) if i % 2 == 0 and tok]
    return tokens, index


def _stronger_space(a: str, b: str) -> str:
    # Dropping a word joins the spaces around it; keep line structure (newlines) if any.
    return a if a.count("\n") >= b.count("\n") else b


def drop_words(text: str, rate: float, seed: int) -> str:
    """Delete ``round(rate * n)`` randomly chosen words of a template's literal text.

    Words are whitespace-separated tokens outside placeholders; the spaces around a
    dropped word collapse to one run (keeping a newline if either side had one).
    """
    _check_rate(rate)

    def fn(literals: list[str]) -> list[str]:
        tokens, index = _words(literals)
        k = _round_half_up(rate * len(index))
        dropped = set(random.Random(seed).sample(index, k))
        out = []
        for s, toks in enumerate(tokens):
            kept = [t for i, t in enumerate(toks) if t and (s, i) not in dropped]
            merged: list[str] = []
            for tok in kept:
                if tok.isspace() and merged and merged[-1].isspace():
                    merged[-1] = _stronger_space(merged[-1], tok)
                else:
                    merged.append(tok)
            out.append("".join(merged))
        return out

    return _map_literals(text, fn)


def shuffle_words(text: str, rate: float, seed: int) -> str:
    """Move ``round(rate * n)`` randomly chosen words of the literal text among themselves.

    The chosen positions are permuted cyclically in a random order, so every chosen word
    leaves its place (a derangement); whitespace and placeholders stay where they are.
    """
    _check_rate(rate)

    def fn(literals: list[str]) -> list[str]:
        tokens, index = _words(literals)
        k = _round_half_up(rate * len(index))
        if k < 2:
            return literals
        order = random.Random(seed).sample(index, k)
        moved = {order[i]: tokens[order[(i + 1) % k][0]][order[(i + 1) % k][1]] for i in range(k)}
        for (s, i), word in moved.items():
            tokens[s][i] = word
        return ["".join(toks) for toks in tokens]

    return _map_literals(text, fn)


_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    # Keys touching each key on a staggered QWERTY keyboard: left/right on the row, the
    # two keys above (same column and one right) and the two below (one left, same column).
    pos = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}
    out = {}
    for ch, (r, c) in pos.items():
        cand = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
        out[ch] = "".join(
            _QWERTY_ROWS[rr][cc] for rr, cc in cand if 0 <= rr < 3 and 0 <= cc < len(_QWERTY_ROWS[rr])
        )
    return out


QWERTY_NEIGHBOURS = _qwerty_neighbours()
TYPO_OPERATIONS = ("insert", "delete", "swap", "substitute")


def _near_key(ch: str, rng: random.Random) -> str:
    near = rng.choice(QWERTY_NEIGHBOURS[ch.lower()])
    return near.upper() if ch.isupper() else near


def _typo(word: str, rng: random.Random) -> str:
    """One DeepWordBug edit of ``word`` at an ASCII letter; the result always differs."""
    letters = [i for i, ch in enumerate(word) if ch.lower() in QWERTY_NEIGHBOURS]
    op = rng.choice(TYPO_OPERATIONS)
    i = rng.choice(letters)
    if op == "swap":
        pairs = [j for j in letters if j + 1 < len(word) and word[j + 1].isalpha() and word[j] != word[j + 1]]
        if pairs:
            j = rng.choice(pairs)
            return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        op = "substitute"
    if op == "delete" and len(word) > 1:
        return word[:i] + word[i + 1 :]
    if op == "insert":
        return word[: i + 1] + _near_key(word[i], rng) + word[i + 1 :]
    return word[:i] + _near_key(word[i], rng) + word[i + 1 :]


def char_typos(text: str, rate: float, seed: int) -> str:
    """Give ``round(rate * n)`` random words of the literal text one character-level typo.

    As PromptBench's character-level attack (DeepWordBug, via TextAttack): each chosen
    word gets one of *insert* a key adjacent on a QWERTY keyboard, *delete* a letter,
    *swap* two neighbouring letters, or *substitute* a letter by an adjacent key. ``n``
    counts the words with at least one ASCII letter; placeholders are never touched.
    """
    _check_rate(rate)

    def fn(literals: list[str]) -> list[str]:
        tokens, index = _words(literals)
        index = [(s, i) for s, i in index if any(ch.lower() in QWERTY_NEIGHBOURS for ch in tokens[s][i])]
        rng = random.Random(seed)
        chosen = rng.sample(index, _round_half_up(rate * len(index)))
        for s, i in sorted(chosen):
            tokens[s][i] = _typo(tokens[s][i], rng)
        return ["".join(toks) for toks in tokens]

    return _map_literals(text, fn)


NOISE: dict[str, Callable[[str, float, int], str]] = {
    "drop_words": drop_words,
    "shuffle_words": shuffle_words,
    "char_typos": char_typos,
}


def noisy_instruction(instruction: Instruction, noise: str, *, rate: float, seed: int) -> Instruction:
    """``instruction`` with surface noise (``drop_words``, ``shuffle_words``, ``char_typos``).

    Only the template's literal text changes; option rendering, label maps and every
    placeholder stay as they were, so the result renders wherever the source did.
    """
    if noise not in NOISE:
        raise HeedfulError(f"unknown noise '{noise}'; expected one of {', '.join(NOISE)}")
    template = NOISE[noise](instruction.template, rate, seed)
    return _derived(instruction, noise, template, f"{noise}({rate:g},{seed})", rate=rate, seed=seed)


# ---------------------------------------------------------------------------------------
# Negation (Sun et al. 2023, section 4.3)
# ---------------------------------------------------------------------------------------

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
    pieces = _pieces(instruction.template)
    literals, rule = negate([lit for lit, _ in pieces])
    template = _join([(lit, markup) for lit, (_, markup) in zip(literals, pieces)])
    return _derived(instruction, "negated", template, f"negated({style})", style=style, rule=rule)


# ---------------------------------------------------------------------------------------
# Nonsense and incorrect instructions (Sun et al. 2023, section 4.3)
# ---------------------------------------------------------------------------------------

# Sun et al.'s five "nonsensical" control instructions, as released with their collection
# (jiudingsun01/InstructionEval, ids BBL/Random/1-5), verbatim including their spelling.
_NONSENSE_TEXTS = (
    "The council of street racoons demands you respond to their inquisition.\n{input}",
    "Surveillance birds query your knowledge of seed. \n{input}",
    "Darth Vader requires you to answer to the dark side\n{input}",
    "Respond to the requirement of the Mars working dolphine union.\n{input}",
    "You are undergoing the inquiry of court of the local squirrels.\n{input}",
)
_NONSENSE_NOTE = (
    "task-type independent: used unchanged for QA, BC and MC tasks; the options are not "
    "shown and the target is the gold option text"
)


def nonsense_instructions(extra: Sequence[Instruction] = ()) -> list[Instruction]:
    """Sun et al.'s five nonsense instructions, then the ``nonsense`` records of ``extra``.

    ``extra`` is typically a loaded collection: its records of other kinds are ignored,
    and records repeating a built-in template are not added twice.
    """
    builtin = [
        Instruction(
            id=f"BBL/Random/{i}",
            template=text,
            kind="nonsense",
            collection="BBL",
            task=None,
            task_type=None,
            answer="text",
            notes=(_NONSENSE_NOTE,),
            origin="builtin",
        )
        for i, text in enumerate(_NONSENSE_TEXTS, 1)
    ]
    seen = set(_NONSENSE_TEXTS)
    out = list(builtin)
    for inst in extra:
        if inst.kind == "nonsense" and inst.template not in seen:
            seen.add(inst.template)
            out.append(inst)
    return out


def incorrect_instruction(
    task_type: str | Collection[str],
    observed_pool: Sequence[Instruction],
    exclude_task: str,
    seed: int,
) -> Instruction:
    """An observed instruction written for another task with the same output format.

    Sun et al.'s *incorrect* control: an instruction seen in training, for a completely
    different task whose answers have the same form. Candidates are the ``observed``
    records of ``observed_pool`` with a task other than ``exclude_task``, a task type in
    ``task_type`` (``"MC"`` or e.g. ``{"MC", "BC"}`` for any classification) and a
    template that is not one of ``exclude_task``'s own observed templates (collections
    attach the same generic template to many tasks). One is drawn with ``seed`` and
    returned for ``exclude_task`` with ``kind="incorrect"``. Its placeholders are those
    of the other task: the renderer reports an instance it cannot fill.
    """
    types = {task_type} if isinstance(task_type, str) else set(task_type)
    own = {i.template for i in observed_pool if i.kind == "observed" and i.task == exclude_task}
    candidates = [
        i
        for i in observed_pool
        if i.kind == "observed"
        and i.task is not None
        and i.task != exclude_task
        and i.task_type in types
        and i.template not in own
    ]
    if not candidates:
        raise HeedfulError(
            f"no observed instruction of another task with task type {'/'.join(sorted(types))} "
            f"to use as an incorrect instruction for task '{exclude_task}'"
        )
    # Sort so the draw depends on the pool's content, not its order.
    candidates.sort(key=lambda i: (i.task or "", i.id, i.template))
    source = random.Random(seed).choice(candidates)
    return replace(
        _derived(source, "incorrect", source.template, f"incorrect({seed})", seed=seed, source_task=source.task),
        id=f"incorrect/{source.task}/{source.id}",
        task=exclude_task,
    )


# ---------------------------------------------------------------------------------------
# Label spaces and simplified definitions (Kung & Peng 2023)
# ---------------------------------------------------------------------------------------


def load_label_space_file(path: str | Path) -> dict[str, tuple[tuple[str, ...] | None, str]]:
    """Read a label-space file (Yin et al. 2023's ``label_space.json`` format).

    Keys ``taskNNN_name.json`` become task names ``taskNNN_name``; each value is
    ``(labels, output description)`` with labels None for open generation (``["Generate
    free text"]``) and an empty description when the file has none.
    """
    from heedful.tasks.superni import FREE_TEXT_LABEL, load_label_spaces

    out = {}
    for name, entry in load_label_spaces(path).items():
        labels = tuple(dict.fromkeys(entry["demo labels"]))
        description = entry.get("output descriptions") or ""
        if not isinstance(description, str):
            raise HeedfulError(f"{path}: field '{name}.json.output descriptions' must be a string")
        out[name] = (None if not labels or labels == (FREE_TEXT_LABEL,) else labels, description)
    return out


def label_space_from_task(task: Task, max_labels: int = 20) -> tuple[str, ...] | None:
    """The closed label space seen in ``task``'s training outputs, or None if open.

    Uses the ``train`` split (all non-test instances when it is empty). The outputs are
    a closed set when they take at most ``max_labels`` distinct values and each value
    occurs twice on average (a few free-text outputs are all distinct). Labels come most
    frequent first, ties in order of first appearance.
    """
    pool = task.split("train") or [i for i in task.instances if i.split != "test"]
    outputs = [ref for inst in pool for ref in inst.references]
    counts = Counter(outputs)
    if not counts or len(counts) > max_labels or len(outputs) < 2 * len(counts):
        return None
    first = {label: n for n, label in reversed(list(enumerate(outputs)))}
    return tuple(sorted(counts, key=lambda label: (-counts[label], first[label])))


def _format_labels(labels: Sequence[str]) -> str:
    if any("," in label for label in labels):
        return ", ".join(f'"{label}"' for label in labels)
    return ", ".join(labels)


def simplified_definition(
    task: Task,
    *,
    label_space: Sequence[str] | None = None,
    output_description: str | None = None,
) -> str:
    """Kung & Peng's simplified definition: only the output space of ``task``.

    With a label space (``label_space``, else ``task.label_space``) it is ``Answer with
    one of: yes, no``; otherwise the definition's sentence that describes the output
    (``output_description``, else ``task.metadata['output_description']``, as in the
    label-space file). A task with neither is an error.
    """
    labels = tuple(dict.fromkeys(label_space)) if label_space is not None else task.label_space
    if labels:
        return f"Answer with one of: {_format_labels(labels)}."
    description = output_description or task.metadata.get("output_description") or ""
    description = description.strip()
    if description:
        return description if description[-1] in string.punctuation else description + "."
    raise HeedfulError(
        f"task '{task.name}': no label space and no output description to build a simplified "
        "definition from (pass a label-space file, or give the task 'output_description' metadata)"
    )


def simplified_task(
    task: Task,
    *,
    label_space: Sequence[str] | None = None,
    output_description: str | None = None,
) -> Task:
    """``task`` with its definition replaced by :func:`simplified_definition`.

    Prompt encodings read ``task.definition``, so this is how a simplified definition
    reaches a SuperNI prompt; ``metadata['perturbations']`` keeps the original.
    """
    text = simplified_definition(task, label_space=label_space, output_description=output_description)
    record = {"name": "simplified_definition", "original_definition": task.definition}
    return replace(task, definition=text, metadata=_with_perturbation(task, record))


_INPUT_SENTINEL = "\x00HEEDFUL_INPUT\x00"


def simplified_instruction(
    task: Task,
    *,
    encoding: str = "def",
    label_space: Sequence[str] | None = None,
    output_description: str | None = None,
) -> Instruction:
    """A SuperNI ``encoding`` of ``task`` with the simplified definition, as a template.

    The template is the encoding rendered once around an ``{input}`` placeholder, so it
    carries the simplified definition (and demonstrations) with it. It matches the
    per-instance encoding except that the input goes in as is, where Tk-Instruct strips
    it and appends a period when it does not end in punctuation; for exact SuperNI
    prompts evaluate :func:`simplified_task` with the encoding instead.
    """
    from heedful.prompts.superni import encode

    simple = simplified_task(task, label_space=label_space, output_description=output_description)
    rendered = encode(simple, _INPUT_SENTINEL, encoding)
    if rendered.count(_INPUT_SENTINEL) != 1:
        raise HeedfulError(f"encoding '{encoding}' does not place the input exactly once for task {task.name}")
    # The encoder punctuates the sentinel, which does not end in punctuation: undo that.
    rendered = rendered.replace(_INPUT_SENTINEL + ".", _INPUT_SENTINEL)
    template = rendered.replace("{", "{{").replace("}", "}}").replace(_INPUT_SENTINEL, "{input}")
    return Instruction(
        id=f"superni/{encoding}~simplified_definition",
        template=template,
        kind="simplified_definition",
        collection="superni",
        task=task.name,
        answer="text",
        origin="perturb:simplified_definition",
        # Not "encoding": the evaluation runner re-encodes instructions that carry one,
        # from the unperturbed task.
        params={"superni_encoding": encoding, "definition": simple.definition},
    )


# ---------------------------------------------------------------------------------------
# Delusive demonstrations (Kung & Peng 2023)
# ---------------------------------------------------------------------------------------


def delusive_demonstrations(
    task: Task,
    *,
    rate: float = 1.0,
    seed: int,
    label_space: Sequence[str] | None = None,
) -> Task:
    """``task`` whose positive demonstrations map inputs to wrong outputs.

    ``round(rate * n)`` of the ``n`` positive demonstrations, drawn with ``seed``, are
    altered. With a label space (``label_space``, else ``task.label_space``) an altered
    demonstration's output becomes a label drawn uniformly among those that differ from
    its gold output under SuperNI normalisation. Without one (generation tasks) the
    altered demonstrations exchange outputs along a random cycle, so none keeps its own.
    Altered demonstrations lose their explanation (it justifies the gold output).
    An entry appended to ``metadata['perturbations']`` records the rate, seed, mode and
    altered indices.
    """
    # Imported here: heedful.evaluate.metrics loads rouge_score (and nltk), seconds of
    # import time that the other perturbations do not need.
    from heedful.evaluate.metrics import normalize_answer

    _check_rate(rate)
    demos = list(task.positive_examples)
    k = _round_half_up(rate * len(demos))
    rng = random.Random(seed)
    altered = sorted(rng.sample(range(len(demos)), k))
    labels = tuple(dict.fromkeys(label_space)) if label_space is not None else task.label_space
    new = list(demos)
    if labels:
        mode = "wrong_label"
        for i in altered:
            gold = normalize_answer(demos[i].output)
            wrong = [label for label in labels if normalize_answer(label) != gold]
            if not wrong:
                raise HeedfulError(f"task '{task.name}': the label space has no label other than '{demos[i].output}'")
            new[i] = Demonstration(input=demos[i].input, output=rng.choice(wrong), explanation="")
    else:
        mode = "swap_outputs"
        if k == 1 or (k >= 2 and len({normalize_answer(demos[i].output) for i in altered}) < 2):
            raise HeedfulError(
                f"task '{task.name}': swapping outputs needs at least two altered demonstrations "
                f"with different outputs (rate {rate} of {len(demos)} alters {k})"
            )
        if k:
            new = _swap_outputs(demos, altered, rng, task.name)
    record = {"name": "delusive_demonstrations", "rate": rate, "seed": seed, "mode": mode, "altered": altered}
    return replace(task, positive_examples=tuple(new), metadata=_with_perturbation(task, record))


def _swap_outputs(demos: list[Demonstration], altered: list[int], rng: random.Random, name: str) -> list[Demonstration]:
    from heedful.evaluate.metrics import normalize_answer

    # A cycle through the altered demonstrations in random order is a derangement; retry
    # a few orders when equal outputs would leave a demonstration with its own answer.
    for _ in range(100):
        order = rng.sample(altered, len(altered))
        source = {order[j]: order[(j + 1) % len(order)] for j in range(len(order))}
        if all(normalize_answer(demos[i].output) != normalize_answer(demos[source[i]].output) for i in altered):
            new = list(demos)
            for i in altered:
                new[i] = Demonstration(input=demos[i].input, output=demos[source[i]].output, explanation="")
            return new
    raise HeedfulError(f"task '{name}': too many demonstrations share an output to swap them all")
