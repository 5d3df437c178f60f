"""Which parameters a run trains: full fine-tuning, or a PEFT method (LoRA, prefix, prompt).

Every method works for causal and seq2seq models; PEFT methods wrap the model in a
``PeftModel`` whose only trainable parameters are the method's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from heedful.errors import HeedfulError

METHODS: tuple[str, ...] = ("full", "lora", "prefix", "prompt")


@dataclass
class MethodConfig:
    """Which parameters train: all of them, or a PEFT method's own."""

    name: Literal["full", "lora", "prefix", "prompt"] = "full"
    """full fine-tuning, or the PEFT method lora, prefix (prefix tuning) or prompt (prompt tuning)."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA alpha."""
    lora_dropout: float = 0.05
    """LoRA dropout."""
    lora_target_modules: list[str] | None = None
    """LoRA target modules (None: peft's defaults for the architecture, the attention query/value projections)."""
    num_virtual_tokens: int = 20
    """Prefix / soft-prompt length."""
    prefix_projection: bool = False
    """Prefix tuning through an MLP reparameterisation (Li & Liang 2021), as Sun et al. 2023 align with."""


def apply_method(model: Any, config: MethodConfig, *, is_seq2seq: bool) -> Any:
    """Prepare ``model`` for training with ``config.name``; returns the (possibly wrapped) model."""
    method = config.name
    if method not in METHODS:
        raise HeedfulError(f"unknown training method '{method}'; expected one of {', '.join(METHODS)}")
    if method == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model

    task_type = TaskType.SEQ_2_SEQ_LM if is_seq2seq else TaskType.CAUSAL_LM
    if method == "lora":
        peft_config: Any = LoraConfig(
            task_type=task_type,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_target_modules) if config.lora_target_modules else None,
        )
    elif method == "prefix":
        peft_config = PrefixTuningConfig(
            task_type=task_type, num_virtual_tokens=config.num_virtual_tokens, prefix_projection=config.prefix_projection
        )
    else:
        peft_config = PromptTuningConfig(task_type=task_type, num_virtual_tokens=config.num_virtual_tokens)
    return get_peft_model(model, peft_config)


def enable_gradient_checkpointing(model: Any, every_n_layers: int = 1) -> None:
    """Recompute activations in the backward pass: less memory, more compute.

    ``every_n_layers`` 1 recomputes every decoder layer (about a third more compute);
    N > 1 only every N-th one, keeping the other layers' activations (selective
    checkpointing: 1/N of the memory saving for 1/N of the extra compute).
    """
    if every_n_layers < 1:
        raise HeedfulError(f"every_n_layers must be at least 1, got {every_n_layers}")
    if not getattr(model, "supports_gradient_checkpointing", True):
        raise HeedfulError(f"{type(model).__name__} does not support gradient checkpointing")
    # Non-reentrant checkpointing also works when the inputs need no gradient (PEFT, frozen embeddings).
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x; the old name warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs, every_n_layers=every_n_layers)
    elif every_n_layers == 1:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        raise HeedfulError("checkpointing every N-th layer needs transformers >= 5 (or checkpoint every layer)")


def is_gradient_checkpointing(model: Any) -> bool:
    """Whether any layer of ``model`` already recomputes its activations."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())


def is_peft(model: Any) -> bool:
    """Whether ``model`` is a PEFT wrapper (its checkpoints hold only adapter weights)."""
    return hasattr(model, "peft_config")


def trainable_state(model: Any) -> dict[str, Any]:
    """Name -> tensor of every trainable parameter (what a checkpoint must restore)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}
