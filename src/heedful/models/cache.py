"""A per-machine cache of GGUF models dequantized once into plain transformers checkpoints.

Loading a GGUF file dequantizes every tensor (about 16 s for SmolLM2-135M); the saved
float32 copy reloads in about 2 s. Copies are written to a temporary folder and renamed
into place, so an interrupted or concurrent build never leaves a half-written model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path

log = logging.getLogger("heedful.models")

MARKER = "heedful-source.json"


def cache_root() -> Path:
    """``$HEEDFUL_CACHE`` if set, else ``~/.cache/heedful``."""
    env = os.environ.get("HEEDFUL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "heedful"


def models_dir() -> Path:
    return cache_root() / "models"


def _source_key(gguf: Path) -> dict[str, object]:
    # Size and name identify a packaged GGUF well enough: a new package version changes them.
    return {"gguf": gguf.name, "size": gguf.stat().st_size}


def is_current(folder: Path, gguf: Path) -> bool:
    """Whether ``folder`` holds a finished plain copy of ``gguf``."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == _source_key(gguf)
    except (OSError, ValueError):
        return False


def plain_copy_of_gguf(gguf: Path, folder: Path) -> Path:
    """Return ``folder`` holding a float32 transformers checkpoint of ``gguf``, building it if needed."""
    if is_current(folder, gguf):
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("dequantizing %s once into %s (later loads are fast)", gguf.name, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # save_pretrained refuses models "quantized with gguf"; the weights are already plain floats.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / MARKER).write_text(json.dumps(_source_key(gguf)))
        _replace_dir(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; a stale ``target`` is moved aside first and removed."""
    if target.exists():
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(target, trash)
        except OSError:
            return  # another process replaced it just now; keep theirs
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(new, target)
    except OSError:
        # Another process finished the same copy first; theirs is as good as ours.
        if not (target / MARKER).is_file():
            raise
