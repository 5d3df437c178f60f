"""The config of model-generated paraphrases (``heedful paraphrase``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from heedful.models.config import ModelConfig
from heedful.prompts.config import PromptConfig
from heedful.tasks.config import DataConfig


@dataclass
class ParaphraseConfig:
    """Paraphrases of each task's base instructions: generated, filtered, saved as a collection."""

    data: DataConfig = field(default_factory=DataConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    endpoint: str | None = None
    """OpenAI-compatible server URL (POST /v1/chat/completions) asked for model.name instead of a local model."""
    k: int = 5
    """Paraphrases kept per instruction."""
    threshold: float = 0.7
    """Minimum embedding cosine similarity to the original."""
    seed: int = 0
    """Seed of the first sampled candidates (then seed+1, ...)."""
    out: str = "paraphrases.jsonl"
    """Collection file (.jsonl) the paraphrases are written to."""
