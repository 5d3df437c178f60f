"""What a result file records about how it was made: versions, platform, seeds."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

from heedful.allocator import allocator
from heedful.hardware import cpu_capability, native_bf16

TRACKED_PACKAGES = ("heedful", "torch", "transformers", "peft", "accelerate", "tokenizers", "gguf", "rouge-score", "numpy")


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict[str, Any]:
    """Versions and platform facts stored with every run."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
        "allocator": allocator(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()  # as set when the model loaded
        info["cpu_capability"] = cpu_capability()
        info["native_bf16"] = native_bf16("cpu")
        info["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
        if torch.cuda.is_available():
            info["cuda_bf16"] = native_bf16("cuda")
    except ImportError:
        pass
    return info
