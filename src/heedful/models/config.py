"""Which model runs, and how: the ``model`` section of every command's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass
class ModelConfig:
    """The model and how it runs."""

    name: str = "smollm2-135m-instruct"
    """Model alias, hub id, local directory or .gguf file."""
    adapter: str | None = None
    """PEFT adapter directory applied on top of the model."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Compute dtype of the weights."""
    device: str = "cpu"
    """cpu, cuda or cuda:N."""
    chat: bool = False
    """Wrap prompts in the model's chat template."""
    truncation: Literal["left", "error"] = "left"
    """A prompt longer than the context: truncate its left end (counted) or stop with an error."""

    def identity(self) -> dict[str, Any]:
        """What a cached model output depends on (the device type, not its index; chat changes the prompt)."""
        return {
            "model": self.name,
            "adapter": self.adapter,
            "dtype": self.dtype,
            "device": self.device.split(":")[0],
            "truncation": self.truncation,
        }
