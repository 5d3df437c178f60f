"""Label spaces of tasks: from a label-space file (Yin et al. 2023) or from a task's training outputs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.tasks.superni import FREE_TEXT_LABEL, load_label_spaces
from heedful.tasks.types import Task


def load_label_space_file(path: str | Path) -> dict[str, tuple[tuple[str, ...] | None, str]]:
    """Read a label-space file (Yin et al. 2023's ``label_space.json`` format).

    Keys ``taskNNN_name.json`` become task names ``taskNNN_name``; each value is
    ``(labels, output description)`` with labels None for open generation (``["Generate
    free text"]``) and an empty description when the file has none.
    """
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
