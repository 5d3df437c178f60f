"""What an evaluation is: the settings that determine its results.

Kept apart from the runner, which loads models, so the CLI can build a config without
importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvalConfig:
    """Everything that determines an evaluation's results (stored with them)."""

    model: str = "smollm2-135m-instruct"
    tasks: str = "bigbench:bbl-mc"
    instructions: str = "designer"
    kinds: list[str] | None = None
    collections: list[str] | None = None
    perturb: list[str] | None = None
    label_spaces: str | None = None
    baselines: bool = False
    shots: int = 0
    limit: int | None = None
    split: str = "test"
    seed: int = 0
    shuffle_options: bool = True
    scoring: str = "sum"
    dtype: str = "float32"
    device: str = "cpu"
    adapter: str | None = None
    chat: bool = False
    max_new_tokens: int = 64
    stop: list[str] = field(default_factory=lambda: ["\n"])
    truncation: str = "left"
    on_unfit: str = "skip"
    batch_size: int = 8

    def identity(self) -> dict[str, Any]:
        """The fields that change results (batch size does not)."""
        data = dataclasses.asdict(self)
        data.pop("batch_size")
        return data
