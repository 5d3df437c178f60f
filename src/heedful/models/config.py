"""Which model runs, and how: the ``model`` section of every command's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from heedful.hardware import resolve_dtype

API_PREFIX = "openai:"  # model.name of a model behind an OpenAI-compatible API


@dataclass
class ModelConfig:
    """The model and how it runs."""

    name: str = "smollm2-135m-instruct"
    """Model alias, hub id, local directory or .gguf file; openai:MODEL for a model behind an OpenAI-compatible API."""
    base_url: str | None = None
    """Server of an openai:MODEL, e.g. http://localhost:8000/v1 (default $OPENAI_BASE_URL, else OpenAI's); key from
    $OPENAI_API_KEY, else a dummy; scoring.batch_size requests run at once."""
    adapter: str | None = None
    """PEFT adapter directory applied on top of the model."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Compute dtype of the weights. auto: bfloat16 where the hardware computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16 or AMX), else float32. The default stays float32, which keeps the run ids and cached outputs of
    earlier results."""
    device: str = "cpu"
    """cpu, cuda or cuda:N."""
    chat: bool = False
    """Wrap prompts in the model's chat template (an openai:MODEL: ask its chat completions endpoint)."""
    truncation: Literal["left", "error"] = "left"
    """A prompt longer than the context: truncate its left end (counted) or stop with an error."""
    threads: int | None = None
    """CPU threads for torch. None: $HEEDFUL_THREADS if set, else the cores free now: usable cores
    (os.sched_getaffinity, at most $OMP_NUM_THREADS) less those other processes keep busy now, at least 1. Left out
    of run ids and cache keys (results differ only in float rounding)."""

    def identity(self) -> dict[str, Any]:
        """What a cached model output depends on (the device type, not its index; chat changes the prompt).

        ``dtype: auto`` counts as the dtype it resolves to on this machine, so it shares cached
        outputs with that dtype named; the thread count is left out, as the batch size is. An
        API model's outputs also depend on its server, and on chat, which picks the endpoint
        rather than changing the prompt text. Added only when set, so the keys of local
        models' cached outputs stay as they were.
        """
        api = self.name.startswith(API_PREFIX)
        ident: dict[str, Any] = {
            "model": self.name,
            "adapter": self.adapter,
            "dtype": self.dtype if api else resolve_dtype(self.dtype, self.device),
            "device": self.device.split(":")[0],
            "truncation": self.truncation,
        }
        if self.base_url is not None:
            ident["base_url"] = self.base_url
        if api:
            ident["chat"] = self.chat
        return ident
