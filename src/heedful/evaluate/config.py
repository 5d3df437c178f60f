"""What an evaluation is: the settings that determine its results, in nested sections.

Kept apart from the runner, which loads models, so the CLI can build a config without
importing torch. The same dataclasses make the command-line flags, the YAML files and the
``config.yaml`` stored with each run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from heedful.configs import non_default
from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig


@dataclass
class ScoringConfig:
    """How answers are scored and generated."""

    rank: Literal["sum", "mean", "sun"] = "sum"
    """Rank classification: sum of option log-likelihoods, mean per token, or sun (Sun et al. 2023)."""
    max_new_tokens: int = 64
    """Generation length for open tasks."""
    stop: list[str] = field(default_factory=lambda: ["\n"])
    """Strings that end a generated answer."""
    batch_size: int = 8
    """Prompts per forward pass at most (halved automatically on out-of-memory; does not change results)."""
    memory_budget_mb: float = 512
    """Working memory of one scoring batch, estimated from its tokens (key/value caches, activations, kept logits),
    beside the model's weights: a batch holds fewer than batch_size prompts when theirs would pass it (does not
    change results)."""


@dataclass
class EvalConfig:
    """Everything that determines an evaluation's results (stored with them)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    baselines: bool = False
    """Report random-guess and majority baselines beside the scores."""
    seed: int = 0
    """Seed for sampling instances, demonstrations, option order and perturbations."""
    out: str = "runs/eval"
    """Output folder (heedful.sqlite, records.jsonl, results.json, config.yaml)."""

    def identity(self) -> dict[str, Any]:
        """The evaluation settings that change results, as their run id's source.

        The options that differ from their defaults (so a later version's new option keeps
        old run ids), less the batch size and thread count and where results are written. Only
        :class:`EvalConfig`'s own fields count, so a command that extends it (robustness)
        shares the evaluation's run id.
        """
        own = {f.name for f in dataclasses.fields(EvalConfig)} - {"out"}
        speed_only = ("scoring.batch_size", "scoring.memory_budget_mb", "model.threads")
        changed = non_default(self, EvalConfig())
        return {k: v for k, v in changed.items() if k.split(".")[0] in own and k not in speed_only}
