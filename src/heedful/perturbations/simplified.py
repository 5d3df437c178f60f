"""Simplified definitions that keep only the output space (Kung & Peng 2023).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import replace

from heedful.errors import HeedfulError
from heedful.perturbations.template import with_perturbation
from heedful.tasks.types import Task


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
    return replace(task, definition=text, metadata=with_perturbation(task, record))
