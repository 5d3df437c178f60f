"""The output head applied only where logits are needed: capture its input, then project the chosen positions.

Full-vocabulary logits at every position cost ``positions x vocab`` memory and the head's
matmul everywhere; training and scoring read them at a few positions (target tokens, a
prompt's last token). transformers' ``logits_to_keep`` selects positions shared by every
row of a batch; capturing the head's input selects any positions of any row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def unwrap(model: Any) -> Any:
    """The module that owns ``get_output_embeddings`` (through DDP and PEFT wrappers)."""
    while hasattr(model, "module") and not hasattr(model, "get_output_embeddings"):
        model = model.module
    return model


@contextlib.contextmanager
def capture_head_input(head: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """While active, the head sees a zero-length sequence; its real input is stored under ``"hidden"``."""
    box: dict[str, torch.Tensor] = {}

    def hook(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if "hidden" in box:  # our own second call: let it through
            return None
        box["hidden"] = args[0]
        return (args[0][..., :0, :], *args[1:])

    handle = head.register_forward_pre_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def final_logits(config: Any, logits: torch.Tensor) -> torch.Tensor:
    """What the model does to its head's output (Gemma's final soft-capping)."""
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits
