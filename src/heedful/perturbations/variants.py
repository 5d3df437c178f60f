"""Perturbed variants of a task's instructions, as ``(instruction, task)`` pairs to evaluate.

``heedful eval --prompts.perturb [simplified,delusive,none]`` evaluates, next to every base
instruction, the variants this module builds. A perturbation spec is ``NAME`` or
``NAME:ARG``; what each name does to a base instruction:

=================  =========================================================================
``none``           No instruction: SuperNI's ``none`` encoding (Tk-Instruct's prompt with
                   neither definition nor examples) for SuperNI/Gupta encodings; for other
                   instructions the template ``{input}`` followed by the base's options
                   placeholder when the base shows options (Gupta 2023's no-instruction run).
``simplified``     Kung & Peng 2023: the definition becomes the output space only
                   (``Answer with one of: yes, no.``, else the output description). SuperNI
                   and Gupta encodings are rebuilt on the simplified task, so the prompt is
                   exactly the base encoding with the simplified definition; other
                   instructions become ``<simplified definition>\\n\\n{input}{options}``.
``delusive[:R]``   Kung & Peng 2023: the base encoding rebuilt with a fraction ``R`` (default
                   1) of its positive demonstrations given wrong outputs. Only encodings
                   that show demonstrations (``def+pos2``, ``pos4``...); other bases are
                   skipped with a warning.
``negated[:S]``    Sun et al. 2023: :func:`~heedful.perturbations.negation.negated` with style
                   ``S`` (default ``sun`` on templates, ``general`` on SuperNI definitions).
``nonsense``       Sun et al.'s five built-in nonsense instructions (one variant each).
``incorrect``      An observed instruction of *another* task among the instructions passed
                   in (a collection loaded with ``--prompts.instructions``); skipped with a warning
                   when there is none.
``closest``        Sun et al. §4.3: the observed instruction of the most similar *other* task,
                   i.e. the observed instruction (of the whole instruction spec, all tasks)
                   nearest to the base by sentence embedding (all-MiniLM-L6-v2), the task's
                   own observed instructions excluded; skipped with a warning when there is none.
``negated_closest`` Sun et al. §4.3's *negated*: the ``closest`` instruction, negated (style
                   ``sun``). ``negated`` negates the base instruction itself.
``drop_words[:R]``, ``shuffle_words[:R]``, ``char_typos[:R]``
                   Surface noise at rate ``R`` (default 0.1).
``paraphrase:FILE`` Paraphrases cached by ``heedful paraphrase`` in the collection ``FILE``
                   (records whose ``params.source_id`` is the base's id, for this task);
                   without a file, skipped with a warning.
=================  =========================================================================

Perturbations of SuperNI and Gupta encodings act on the task *definition* (negation,
noise) or task material (demonstrations) and rebuild the encoding, so demonstrations
and the ``Now complete the following example`` frame stay intact. Each variant has
``kind`` = the perturbation name, ``id`` = ``<base id>+<name>`` (``+nonsense/<i>``,
``+paraphrase/<i>`` where there are several) and ``params`` recording the name, its
parameters, the seed and the base's id. The same seed always gives the same variants.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.perturbations.closest import closest_observed
from heedful.perturbations.delusive import delusive_demonstrations
from heedful.perturbations.incorrect import incorrect_instruction
from heedful.perturbations.label_space import label_space_from_task
from heedful.perturbations.negation import negated
from heedful.perturbations.noise import noisy_instruction
from heedful.perturbations.simplified import simplified_task
from heedful.prompts.builtin import encoding_instruction, superni_instruction
from heedful.prompts.collection import load_collection
from heedful.prompts.instruction import Instruction
from heedful.prompts.nonsense import nonsense_instructions
from heedful.prompts.safe_format import escape_braces
from heedful.prompts.sources import base_task_name
from heedful.tasks.types import Task

log = logging.getLogger(__name__)

PERTURBATIONS = (
    "none",
    "simplified",
    "delusive",
    "negated",
    "nonsense",
    "incorrect",
    "closest",
    "negated_closest",
    "drop_words",
    "shuffle_words",
    "char_typos",
    "paraphrase",
)
DEFAULT_NOISE_RATE = 0.1
_RATED = ("delusive", "drop_words", "shuffle_words", "char_typos")

LabelSpaces = Mapping[str, tuple[tuple[str, ...] | None, str]]


@dataclass(frozen=True)
class Perturbation:
    """A parsed ``NAME[:ARG]`` spec: ``rate`` for rated names, ``arg`` for the others."""

    name: str
    rate: float | None = None
    arg: str | None = None

    @property
    def label(self) -> str:
        if self.rate is not None:
            return f"{self.name}:{self.rate:g}"
        return f"{self.name}:{self.arg}" if self.arg else self.name


def parse_perturbation(spec: str) -> Perturbation:
    """Parse ``drop_words:0.2``, ``negated:general``, ``paraphrase:cache.jsonl``, ``none``..."""
    name, _, arg = spec.strip().partition(":")
    if name not in PERTURBATIONS:
        raise HeedfulError(f"unknown perturbation '{spec}'; expected one of {', '.join(PERTURBATIONS)}")
    if name in _RATED:
        if not arg:
            return Perturbation(name, rate=1.0 if name == "delusive" else DEFAULT_NOISE_RATE)
        try:
            rate = float(arg)
        except ValueError:
            raise HeedfulError(f"perturbation '{spec}': rate '{arg}' is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise HeedfulError(f"perturbation '{spec}': rate must be between 0 and 1")
        return Perturbation(name, rate=rate)
    if arg and name not in ("negated", "paraphrase"):
        raise HeedfulError(f"perturbation '{name}' takes no argument, got '{spec}'")
    return Perturbation(name, arg=arg or None)


def resolve_label_space(
    task: Task, label_spaces: LabelSpaces | None = None
) -> tuple[tuple[str, ...] | None, str, str]:
    """``(labels, output description, source)`` of ``task``.

    The label-space file wins (keyed by task name, ``taskNNN_name``; a file entry of
    free text gives labels None), then ``task.label_space``, then the closed set of the
    training outputs (:func:`~heedful.perturbations.label_space.label_space_from_task`).
    ``source`` is ``file``, ``task``, ``train outputs`` or ``none``.
    """
    description = str(task.metadata.get("output_description") or "")
    for key in (task.name, base_task_name(task)):
        if label_spaces is not None and key in label_spaces:
            labels, file_description = label_spaces[key]
            return labels, file_description or description, "file"
    if task.label_space:
        return tuple(task.label_space), description, "task"
    labels = label_space_from_task(task)
    return labels, description, "train outputs" if labels else "none"


def base_instructions(instructions: Sequence[Instruction]) -> list[Instruction]:
    """The instructions perturbations start from: the designer-kind ones, else all."""
    designer = [i for i in instructions if i.kind == "designer"]
    return designer or list(instructions)


def perturbed_variants(
    task: Task,
    instructions: Sequence[Instruction],
    perturb: Sequence[str],
    *,
    seed: int,
    label_spaces: LabelSpaces | None = None,
    observed_pool: Sequence[Instruction] | None = None,
) -> list[tuple[Instruction, Task]]:
    """Every variant of ``perturb`` for the base instructions of ``task`` (see the module doc).

    ``instructions`` are the task's instructions being evaluated; perturbations start
    from :func:`base_instructions` of them. ``label_spaces`` is a
    :func:`~heedful.perturbations.label_space.load_label_space_file` mapping. ``observed_pool``
    (default: the ``observed`` records of ``instructions``; evaluation passes every observed
    record of its instruction spec, all tasks) feeds ``incorrect`` and ``closest``. Returns ``(variant, task to render it against)`` pairs in spec order.
    """
    specs = [parse_perturbation(s) for s in perturb if s.strip()]
    bases = base_instructions(instructions)
    pool = list(observed_pool) if observed_pool is not None else [i for i in instructions if i.kind == "observed"]
    out: list[tuple[Instruction, Task]] = []
    for spec in specs:
        build = _BUILDERS[spec.name]
        for base in bases:
            for variant, variant_task in build(spec, base, task, seed, label_spaces, pool):
                params = {"perturbation": spec.name, "spec": spec.label, "seed": seed, "base_id": base.id}
                if spec.rate is not None:
                    params["rate"] = spec.rate
                out.append((replace(variant, params={**variant.params, **params}), variant_task))
    return out


# ---------------------------------------------------------------------------------------
# One builder per perturbation: (spec, base, task, seed, label spaces, pool) -> pairs
# ---------------------------------------------------------------------------------------

Pairs = list[tuple[Instruction, Task]]


def _named(variant: Instruction, base: Instruction, name: str, suffix: str = "") -> Instruction:
    return replace(
        variant,
        id=f"{base.id}+{name}{suffix}",
        kind=name,
        task=variant.task or base.task,
        origin=f"perturb:{name}:{base.origin or base.id}",
    )


def _rebuilt(base: Instruction, task: Task, name: str, **params: object) -> Instruction:
    """``base``'s encoding rebuilt on a modified ``task`` (its template bakes the task in)."""
    encoding = base.encoding
    assert encoding is not None
    rebuilt = encoding_instruction(task, encoding)
    return replace(_named(rebuilt, base, name), params={"encoding": encoding, **params})


def _options_tail(base: Instruction) -> str:
    return "{" + base.options.field + "}" if base.options is not None else ""


def _none(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    if base.encoding is not None or task.source == "superni":
        return [(_named(replace(superni_instruction(task, "none"), params={"encoding": "none"}), base, "none"), task)]
    template = "{input}" + _options_tail(base)
    variant = replace(base, template=template, wrapper=None, params={})
    return [(_named(variant, base, "none"), task)]


def _simplified(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    labels, description, source = resolve_label_space(task, ls)
    if not labels and not description:
        raise HeedfulError(
            f"task '{task.name}': no label space or output description for a simplified definition "
            "(pass --prompts.label_spaces FILE)"
        )
    simple = simplified_task(task, label_space=labels, output_description=description)
    params = {"definition": simple.definition, "label_source": source}
    if base.encoding is not None:
        return [(_rebuilt(base, simple, "simplified", **params), simple)]
    template = escape_braces(simple.definition) + "\n\n{input}" + _options_tail(base)
    return [(_named(replace(base, template=template, wrapper=None, params=params), base, "simplified"), simple)]


def _delusive(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    encoding = base.encoding
    if encoding is None or "pos" not in encoding:
        log.warning(
            "task %s: 'delusive' needs an encoding with demonstrations (e.g. superni:def+pos2); "
            "instruction %s has none, skipped",
            task.name,
            base.id,
        )
        return []
    if not task.positive_examples:
        log.warning("task %s has no positive examples: 'delusive' skipped", task.name)
        return []
    labels, _, _ = resolve_label_space(task, ls)
    deluded = delusive_demonstrations(task, rate=spec.rate if spec.rate is not None else 1.0, seed=seed, label_space=labels)
    record = deluded.metadata["perturbations"][-1]
    return [(_rebuilt(base, deluded, "delusive", mode=record["mode"], altered=record["altered"]), deluded)]


def _on_definition(base: Instruction, task: Task, name: str, fn: Callable[[Instruction], Instruction]) -> Pairs:
    """Apply a template perturbation to the definition of an encoding, or to the template."""
    if base.encoding is not None:
        if not task.definition.strip():
            log.warning("task %s has no definition to apply '%s' to; skipped", task.name, name)
            return []
        probe = Instruction(id=base.id, template=escape_braces(task.definition), kind=base.kind, collection="")
        changed = fn(probe)
        definition = changed.template.replace("{{", "{").replace("}}", "}")
        new_task = replace(task, definition=definition)
        extra = {k: v for k, v in changed.params.items() if k not in ("source_id", "source_kind")}
        return [(_rebuilt(base, new_task, name, definition=definition, **extra), new_task)]
    changed = fn(base)
    params = {k: v for k, v in changed.params.items() if k not in ("source_id", "source_kind")}
    return [(_named(replace(changed, params=params), base, name), task)]


def _negated(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    style = spec.arg or ("general" if base.encoding is not None else "sun")
    return _on_definition(base, task, "negated", lambda inst: negated(inst, style=style))


def _noise(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    rate = spec.rate if spec.rate is not None else DEFAULT_NOISE_RATE
    return _on_definition(base, task, spec.name, lambda inst: noisy_instruction(inst, spec.name, rate=rate, seed=seed))


def _nonsense(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    return [
        (_named(replace(inst, task=task.name, params={"source_id": inst.id}), base, "nonsense", f"/{i}"), task)
        for i, inst in enumerate(nonsense_instructions(), 1)
    ]


def _incorrect(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    name = base_task_name(task)
    others = [i for i in pool if i.task is not None and i.task != name]
    if not others:
        log.warning("task %s: no observed instruction of another task for 'incorrect'; skipped", task.name)
        return []
    types = base.task_type or {i.task_type for i in others if i.task_type}
    try:
        variant = incorrect_instruction(types, others, name, seed)
    except HeedfulError as err:
        log.warning("task %s: %s; 'incorrect' skipped", task.name, err)
        return []
    return [(_named(variant, base, "incorrect"), task)]


def _closest_instruction(base: Instruction, task: Task, pool: list) -> Instruction | None:
    """The observed instruction of another task nearest to ``base`` (None, warned, when there is none)."""
    name = base_task_name(task)
    others = [i for i in pool if i.task != name and i.id != base.id]
    if not others:
        log.warning("task %s: no observed instruction of another task to find the closest one in; skipped", task.name)
        return None
    variant, _ = closest_observed(base, others)
    return replace(variant, task=name)


def _closest(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    variant = _closest_instruction(base, task, pool)
    return [] if variant is None else [(_named(variant, base, "closest"), task)]


def _negated_closest(
    spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list
) -> Pairs:
    variant = _closest_instruction(base, task, pool)
    if variant is None:
        return []
    negation = negated(variant, style=spec.arg or "sun")
    params = {**variant.params, **{k: v for k, v in negation.params.items() if k not in ("source_id", "source_kind")}}
    return [(_named(replace(negation, params=params), base, "negated_closest"), task)]


def _paraphrase(spec: Perturbation, base: Instruction, task: Task, seed: int, ls: LabelSpaces | None, pool: list) -> Pairs:
    if not spec.arg:
        log.warning("'paraphrase' needs a cached collection (paraphrase:FILE from heedful paraphrase); skipped")
        return []
    records = _load_cached(spec.arg)
    names = {task.name, base_task_name(task)}
    mine = [r for r in records if r.task in names and r.params.get("source_id") == base.id]
    if not mine:
        log.warning("%s: no paraphrase of instruction %s for task %s; skipped", spec.arg, base.id, task.name)
    return [(_named(r, base, "paraphrase", f"/{i}"), task) for i, r in enumerate(mine, 1)]


_CACHE: dict[str, tuple[float, list[Instruction]]] = {}


def _load_cached(path: str) -> list[Instruction]:
    """Load a paraphrase collection once per file version (tasks share it)."""
    file = Path(path)
    if not file.is_file():
        raise HeedfulError(f"{path}: paraphrase collection not found (create it with heedful paraphrase)")
    mtime = file.stat().st_mtime
    cached = _CACHE.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, load_collection(file))
        _CACHE[path] = cached
    return cached[1]


_BUILDERS: dict[str, Callable[..., Pairs]] = {
    "none": _none,
    "simplified": _simplified,
    "delusive": _delusive,
    "negated": _negated,
    "nonsense": _nonsense,
    "incorrect": _incorrect,
    "closest": _closest,
    "negated_closest": _negated_closest,
    "drop_words": _noise,
    "shuffle_words": _noise,
    "char_typos": _noise,
    "paraphrase": _paraphrase,
}
