"""Instructions: a prompt template plus its provenance and rendering rules.

The record format is documented in docs/instruction-format.md (heedful's own copy of
the collection format of Sun et al. 2023's release).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OptionsSpec:
    """How a record renders all options into one placeholder."""

    field: str
    item: str
    sep: str = ""
    prefix: str = ""
    suffix: str = ""
    letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Instruction:
    """One instruction template with provenance.

    ``kind``: observed, unobserved, designer, closest, incorrect, negated, nonsense, or a
    perturbation name. ``task`` is None for task-independent templates. ``origin`` says
    where the record came from (``file:line``, ``builtin``, ...).
    """

    id: str
    template: str
    kind: str
    collection: str
    task: str | None = None
    task_type: str | None = None  # QA / BC / MC, as in the collection format
    extract: str | None = None
    options: OptionsSpec | None = None
    choice_fields: str | None = None
    extra_fields: dict[str, str] | None = None
    label_map: dict[str, str] | None = None
    fixed_options: tuple[str, ...] | None = None
    answer: str = "text"  # "text" or "letter"
    wrapper: str | None = None  # "alpaca" or None
    notes: tuple[str, ...] = ()
    origin: str = ""
    params: dict[str, object] = field(default_factory=dict)  # perturbation parameters, seed
    # The SuperNI/Gupta encoding (``def+pos2``, ``gupta``...) a built-in template bakes in,
    # with the task's definition and demonstrations: perturbations of the definition or the
    # demonstrations rebuild the template from the changed task. None for every other record.
    encoding: str | None = None
