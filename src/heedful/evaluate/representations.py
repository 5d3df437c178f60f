"""First-decoded-token representations of every (task, instruction, instance) prompt.

The prompts are the evaluation engine's (:func:`heedful.evaluate.runner.build_work`), so a
vector belongs to exactly the prompt an evaluation with the same config scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heedful.evaluate.config import EvalConfig
from heedful.evaluate.runner import plan_work
from heedful.models.types import Backend
from heedful.progress import progress_bar
from heedful.tasks.spec import load_data


@dataclass(frozen=True)
class PromptLabel:
    """What one vector is the representation of."""

    task: str
    instruction_id: str
    kind: str
    instance_id: str


def first_token_representations(
    config: EvalConfig, backend: Backend, *, layer: int = -2, show_progress: bool = True
) -> tuple[np.ndarray, list[PromptLabel], dict[str, int]]:
    """``(vectors [n, hidden], their labels, skipped)`` for the prompts of ``config``.

    ``layer`` indexes the model's hidden states (-2: the penultimate layer, as Sun et al.
    2023). ``skipped`` counts prompts left out because an instruction does not fit a
    task, as in evaluation.
    """
    tasks = load_data(config.data, seed=config.seed)
    items, skipped = plan_work(tasks, config, backend)
    labels = [PromptLabel(it.task.name, it.instruction.id, it.instruction.kind, it.instance.id) for it in items]
    prompts = [it.example.prompt for it in items]
    chunk = max(config.scoring.batch_size * 4, 16)
    parts = []
    with progress_bar("representations", total=len(prompts), enabled=show_progress) as advance:
        for start in range(0, len(prompts), chunk):
            part = prompts[start : start + chunk]
            parts.append(backend.first_token_hidden_states(part, layer=layer, batch_size=config.scoring.batch_size))
            advance(len(part))
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32), labels, skipped
