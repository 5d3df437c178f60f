"""``load_model``: a built-in alias, hub id, local folder or ``.gguf`` file -> a ready backend."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from heedful.errors import HeedfulError
from heedful.hardware import free_cores, resolve_dtype, usable_cores
from heedful.io import read_json_object
from heedful.models.config import API_PREFIX, ModelConfig
from heedful.models.encoding import needs_bos
from heedful.models.hf_causal import CausalBackend
from heedful.models.hf_seq2seq import Seq2SeqBackend
from heedful.models.openai_api import OpenAIBackend, api_model
from heedful.models.registry import get_alias, list_aliases
from heedful.progress import transformers_bars_off
from heedful.rundir import RunDir

log = logging.getLogger("heedful.models")

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
# owner/name, as on the Hugging Face hub.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def parse_dtype(dtype: str, device: str = "cpu") -> torch.dtype:
    """``float32``/``fp32``, ``bfloat16``/``bf16``, ``float16``/``fp16`` or ``auto`` (bfloat16 where
    ``device`` computes it natively, else float32: :func:`heedful.hardware.resolve_dtype`) as a torch dtype."""
    try:
        return DTYPES[resolve_dtype(dtype, device).lower()]
    except KeyError:
        raise HeedfulError(f"unknown dtype '{dtype}': use float32, bfloat16 (bf16), float16 (fp16) or auto") from None


def parse_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` (``mps`` where available), checked against this machine."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise HeedfulError(f"unknown device '{device}': use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise HeedfulError(
                f"device '{device}' requested but no CUDA GPU is available (torch.cuda.is_available() is False)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise HeedfulError(f"device '{device}': only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise HeedfulError(f"device '{device}' requested but MPS is not available")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise HeedfulError(f"unsupported device '{device}': use cpu, cuda or cuda:N")
    return dev


def set_threads(threads: int | None) -> int:
    """Size torch's CPU thread pool and return its size: ``threads``, else ``$HEEDFUL_THREADS``,
    else the cores free now (:func:`heedful.hardware.free_cores`).

    Two busy thread pools on one core make torch several times slower, so by default it
    takes only the cores that other processes leave free.
    """
    env = os.environ.get("HEEDFUL_THREADS")
    if threads is None and env:
        try:
            threads = int(env)
        except ValueError:
            raise HeedfulError(f"HEEDFUL_THREADS must be a whole number, not '{env}'") from None
        if threads < 1:
            raise HeedfulError(f"HEEDFUL_THREADS must be at least 1, not {threads}")
        why = "$HEEDFUL_THREADS"
    elif threads is None:
        threads, others = free_cores()
        why = f"the cores free: {usable_cores()} usable, {others:.1f} busy with other processes"
    elif threads < 1:
        raise HeedfulError(f"model.threads must be at least 1, not {threads}")
    else:
        why = "model.threads"
    torch.set_num_threads(threads)
    log.info("torch threads: %d (%s)", threads, why)
    return threads


def resolve_source(name_or_path: str) -> tuple[str, str | None]:
    """``(pretrained, gguf_file)`` for ``from_pretrained``: alias, existing path, or hub id."""
    alias = get_alias(name_or_path)
    if alias is not None:
        return str(alias.resolve()), None
    path = Path(name_or_path).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise HeedfulError(f"{path}: a model file must be .gguf; for a checkpoint give its folder")
        return str(path.resolve().parent), path.name
    if path.is_dir():
        return str(path), None
    if path.suffix.lower() == ".gguf" or name_or_path.startswith((".", "/", "~")):
        raise HeedfulError(f"{name_or_path}: no such file or folder")
    if _HUB_ID.match(name_or_path):
        return name_or_path, None
    raise HeedfulError(
        f"unknown model '{name_or_path}': not a built-in alias ({', '.join(list_aliases())}), "
        "an existing path, or a hub id like owner/name"
    )


def _from_pretrained(cls: Any, source: str, what: str, **kwargs: Any) -> Any:
    try:
        with transformers_bars_off(enabled=Path(source).exists()):  # hub downloads keep their bars
            return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HeedfulError(f"cannot load {what} from '{source}': {first}") from err


def load_model(
    name_or_path: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    adapter: str | None = None,
    trust_remote_code: bool = False,
    truncation: str = "left",
    threads: int | None = None,
    add_bos_token: bool | None = None,
    max_length: int | None = None,
) -> CausalBackend | Seq2SeqBackend:
    """Load a model and its tokenizer as a backend.

    ``name_or_path``: a built-in alias (``smollm2-135m-instruct``, ``gemma3-270m``), a
    local checkpoint folder, a ``.gguf`` file, or a hub id (``owner/name``).
    ``dtype``: float32 (default), bfloat16/bf16, float16/fp16 or auto (bfloat16 where the
    device computes it natively, else float32). ``device``: cpu (default), cuda or cuda:N.
    ``adapter``: a PEFT adapter folder applied on top. ``truncation``: ``left`` cuts
    over-long prompts from the left (counted and warned), ``error`` refuses them.
    ``threads``: torch CPU threads (else ``$HEEDFUL_THREADS``, else the cores free now).
    ``add_bos_token``: score and generate with a leading BOS (default: as lm-eval,
    only for the Gemma family). ``max_length``: override the context size.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    if name_or_path.startswith(API_PREFIX):  # load_configured serves these; here the weights were asked for
        raise HeedfulError(
            f"{name_or_path} runs behind an API: it has no weights to load here (training needs a local model)"
        )
    dev = parse_device(device)
    torch_dtype = parse_dtype(dtype, device)
    set_threads(threads)
    source, gguf_file = resolve_source(name_or_path)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file is not None:
        extra["gguf_file"] = gguf_file

    config = _from_pretrained(AutoConfig, source, "model config", **extra)
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    model_cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = _from_pretrained(model_cls, source, "model", dtype=torch_dtype, **extra)
    tokenizer = _from_pretrained(AutoTokenizer, source, "tokenizer", **extra)
    model.to(device=dev, dtype=torch_dtype)
    if adapter is not None:
        model = _apply_adapter(model, adapter)
    model.eval()

    name = name_or_path if adapter is None else f"{name_or_path}+{adapter}"
    return backend_for(
        model, tokenizer, name=name, add_bos_token=add_bos_token, truncation=truncation, max_length=max_length
    )


FINAL = "final"  # where a training run saves its model or adapter


def trained_model(run: str | Path, unit: str = "") -> tuple[str, str | None]:
    """``(model, adapter)`` that a finished ``heedful train`` run folder trained (its ``final/``).

    ``unit`` names an STL run's per-task folder. A PEFT run gives the model its adapter was
    trained on (peft records it; a run chained from a full fine-tuning run has that run's
    model) and the adapter folder; a full fine-tuning run gives the saved model folder.
    """
    run = Path(run)
    record = RunDir(run).train_config
    if not record.is_file():
        raise HeedfulError(f"{run}: not a heedful training run (no {record.name})")
    for folder in ([run / unit / FINAL] if unit else []) + [run / FINAL]:
        if (folder / "adapter_config.json").is_file():
            base = read_json_object(folder / "adapter_config.json").get("base_model_name_or_path")
            return base or read_json_object(record)["config"]["model"]["name"], str(folder)
        if (folder / "config.json").is_file():
            return str(folder), None
    raise HeedfulError(f"{run}: no finished model for '{unit or 'mtl'}' (looked in {FINAL}/)")


def load_configured(model: ModelConfig, **kwargs: Any) -> CausalBackend | Seq2SeqBackend | OpenAIBackend:
    """:func:`load_model` for a command config's ``model`` section.

    ``model.name`` may also be a finished ``heedful train`` run folder (MTL): its trained
    model, with its adapter if it trained one; or ``openai:MODEL`` at ``model.base_url``.
    """
    remote = api_model(model.name)
    if remote is not None:
        if model.adapter is not None:
            raise HeedfulError(f"model.adapter: {model.name} runs behind an API; an adapter applies to local weights")
        return OpenAIBackend(remote, base_url=model.base_url, chat=model.chat)
    if model.base_url is not None:
        raise HeedfulError(f"model.base_url is for a model behind an API: name it {API_PREFIX}MODEL, not {model.name}")
    name, adapter = model.name, model.adapter
    if adapter is None and RunDir(Path(name)).train_config.is_file():
        name, adapter = trained_model(name)
    return load_model(
        name, dtype=model.dtype, device=model.device, adapter=adapter, truncation=model.truncation,
        threads=model.threads, **kwargs,
    )


def backend_for(
    model: Any,
    tokenizer: Any,
    *,
    name: str,
    add_bos_token: bool | None = None,
    truncation: str = "left",
    max_length: int | None = None,
) -> CausalBackend | Seq2SeqBackend:
    """The backend for a loaded model: seq2seq or causal by its config, BOS as the model family wants it."""
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    add_bos = needs_bos(model.config) if add_bos_token is None else add_bos_token
    backend_cls = Seq2SeqBackend if seq2seq else CausalBackend
    return backend_cls(
        model, tokenizer, name=name, add_bos=add_bos and not seq2seq, truncation=truncation, max_length=max_length
    )


def _apply_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file() and not _HUB_ID.match(adapter):
        raise HeedfulError(f"{adapter}: not a PEFT adapter folder (no adapter_config.json)")
    try:
        return PeftModel.from_pretrained(model, str(path) if path.exists() else adapter, is_trainable=False)
    except (OSError, ValueError, RuntimeError) as err:
        raise HeedfulError(f"cannot load adapter '{adapter}': {str(err).splitlines()[0]}") from err
