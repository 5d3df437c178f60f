"""heedful's built-in phrasings for the BIG-bench Lite choice tasks.

The collection (``heedful/data/phrasings.jsonl``, in the collection format of
docs/instruction-format.md) holds at least eight instructions per BIG-bench Lite task
whose examples have ``target_scores``, written for heedful and therefore unobserved by
any instruction-tuning collection (``kind = "unobserved"``, ``collection = "heedful"``).
It is the default instruction set of ``heedful robustness`` besides each task's designer
instruction. How the phrasings were written: docs/builtin-phrasings.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.prompts.collection import load_collection
from heedful.prompts.instruction import Instruction

COLLECTION = "heedful"
_RESOURCE = ("data", "phrasings.jsonl")


def builtin_phrasings_path() -> Path:
    """Filesystem path of the built-in phrasing collection shipped with the package."""
    resource = resources.files("heedful").joinpath(*_RESOURCE)
    # The package is installed as files (setuptools package-data), never zipped, so the
    # traversable is a real path; say so clearly if a packaging change ever breaks that.
    path = Path(str(resource))
    if not path.is_file():
        raise HeedfulError(f"{path}: built-in phrasing collection missing from the heedful package (reinstall heedful)")
    return path


def load_builtin_phrasings() -> list[Instruction]:
    """The built-in phrasings, validated, in file order (origin ``FILE:LINE``)."""
    # Imported here: the collection loader is only needed when the built-ins are asked for.

    return load_collection(builtin_phrasings_path())


def builtin_phrasing_tasks() -> tuple[str, ...]:
    """BIG-bench task names the built-in collection covers, in file order."""
    return tuple(dict.fromkeys(i.task for i in load_builtin_phrasings() if i.task is not None))
