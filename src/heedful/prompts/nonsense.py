"""Sun et al. 2023's nonsense instructions (section 4.3): a built-in instruction source.
"""

from __future__ import annotations

from collections.abc import Sequence

from heedful.prompts.instruction import Instruction

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
