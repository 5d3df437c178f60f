"""Representation distance of instructions (Sun et al. 2023, section 4.5 and Table 6).

For every (task, instruction, instance) prompt the model's hidden state at the first
decoded token is one vector. An instruction of a compared kind (``unobserved``) is as far
from the reference kinds (``observed``, ``designer``) as the mean, over instances, of the
l2 distance between its vector and the nearest reference instruction's vector for the
same instance. Sun et al. relate this distance to the accuracy lost on unobserved
instructions, and show that alignment training shrinks it.

Nothing here runs a model: the inputs are vectors and their labels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from heedful.errors import HeedfulError
from heedful.evaluate.representations import PromptLabel

DEFAULT_REFERENCE_KINDS: tuple[str, ...] = ("observed", "designer")


def nearest_reference_distances(
    vectors: np.ndarray, labels: Sequence[PromptLabel], *, reference_kinds: Sequence[str] = DEFAULT_REFERENCE_KINDS
) -> list[dict[str, Any]]:
    """One row per non-reference instruction of a task: its mean distance to the nearest reference.

    Rows hold ``task``, ``instruction_id``, ``kind``, ``distance`` (mean over the
    instances that also have a reference vector) and ``n`` (those instances). Tasks
    without a reference instruction give no rows.
    """
    if len(vectors) != len(labels):
        raise HeedfulError(f"{len(vectors)} vectors but {len(labels)} labels")
    references: dict[tuple[str, str], list[int]] = defaultdict(list)  # (task, instance) -> rows
    compared: dict[tuple[str, str, str], list[int]] = defaultdict(list)  # (task, instruction, kind) -> rows
    for row, label in enumerate(labels):
        if label.kind in reference_kinds:
            references[(label.task, label.instance_id)].append(row)
        else:
            compared[(label.task, label.instruction_id, label.kind)].append(row)
    out = []
    for (task, instruction_id, kind), rows in compared.items():
        distances = []
        for row in rows:
            refs = references.get((task, labels[row].instance_id))
            if refs:
                distances.append(float(np.linalg.norm(vectors[refs] - vectors[row], axis=1).min()))
        if distances:
            out.append({"task": task, "instruction_id": instruction_id, "kind": kind,
                        "distance": float(np.mean(distances)), "n": len(distances)})
    return out


def distance_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean distance per (task, kind) over its instructions, and per kind the mean and median over tasks."""
    per_task: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        per_task[row["task"]][row["kind"]].append(row["distance"])
    tasks = {
        task: {kind: {"distance": float(np.mean(d)), "n_instructions": len(d)} for kind, d in kinds.items()}
        for task, kinds in per_task.items()
    }
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kinds in tasks.values():
        for kind, entry in kinds.items():
            by_kind[kind].append(entry["distance"])
    # the median beside the mean: one degenerate task (an empty input whose last prompt
    # token is the attention-sink position) can carry a norm 20x the others
    overall = {
        kind: {"distance": float(np.mean(d)), "median_distance": float(np.median(d)), "n_tasks": len(d)}
        for kind, d in by_kind.items()
    }
    return {"tasks": tasks, "overall": overall}
