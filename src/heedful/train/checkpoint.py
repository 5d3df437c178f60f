"""Resumable training checkpoints in safetensors, written atomically.

A checkpoint folder ``checkpoints/step-00000010/`` holds

* ``model.safetensors`` — every trainable parameter (all weights for full fine-tuning,
  the adapter's for PEFT; frozen weights come back from the base model);
* ``optimizer.safetensors`` — the optimizer's tensors, its param groups in the metadata;
* ``rng-rank<R>.safetensors`` — torch (and CUDA) RNG state of each process;
* ``trainer_state.json`` — step, epoch, steps done in the epoch's batch order, Python and
  NumPy RNG states, loss history.

The folder is built under a temporary name and renamed into place, then ``latest`` is
rewritten atomically: a run killed at any moment leaves only whole checkpoints behind.

Under FSDP parameters and optimizer state are sharded across processes; there the
weights, optimizer and RNG go through ``Accelerator.save_state`` / ``load_state``
(accelerate's layout, its optimizer file in torch's format) inside the same atomic folder,
with ``trainer_state.json`` beside them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from heedful.errors import HeedfulError
from heedful.io import write_json_atomic, write_text_atomic
from heedful.train.methods import trainable_state

LATEST = "latest"


@dataclass
class TrainerState:
    """Where a run stands: optimizer steps done in total and in the current epoch.

    The epoch's batch order is a function of (seed, epoch), so ``step_in_epoch`` is all the
    data-order state a resume needs; ``data_fingerprint`` guards against resuming on
    other data.
    """

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    tokens: int = 0
    data_fingerprint: str = ""
    losses: list[float] = field(default_factory=list)


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            name = f"state.{index}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().contiguous().cpu()
            else:
                scalars[name] = value
    metadata = {"param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    return tensors, metadata


def _load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    state: dict[int, dict[str, Any]] = {}
    for name, value in [*tensors.items(), *json.loads(metadata.get("scalars", "{}")).items()]:
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})


def _python_numpy_rng() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }


def _restore_python_numpy_rng(data: dict[str, Any]) -> None:
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = data["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _torch_rng() -> dict[str, torch.Tensor]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    return tensors


def _restore_torch_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    directory: Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    state: TrainerState,
    *,
    accelerator: Any = None,
    keep: int | None = 2,
) -> Path:
    """Write a checkpoint of ``model`` (trainable parameters), optimizer, RNG and ``state``.

    Under several processes every rank writes its RNG state; the main process writes the
    rest and renames the folder. Keeps the ``keep`` newest checkpoints (None keeps all).
    """
    directory = Path(directory)
    final = directory / checkpoint_name(state.step)
    tmp = directory / f".{final.name}.tmp"
    is_main = accelerator is None or accelerator.is_main_process
    rank = 0 if accelerator is None else accelerator.process_index
    if is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    _barrier(accelerator)
    if is_fsdp(accelerator):
        accelerator.save_state(str(tmp), safe_serialization=True)
        if is_main:
            write_json_atomic(tmp / "trainer_state.json", {**asdict(state), "rng": _python_numpy_rng()})
    else:
        save_file(_torch_rng(), str(tmp / f"rng-rank{rank}.safetensors"))
    if is_main and not is_fsdp(accelerator):
        unwrapped = accelerator.unwrap_model(model) if accelerator is not None else model
        weights = {name: p.detach().contiguous().cpu() for name, p in trainable_state(unwrapped).items()}
        save_file(weights, str(tmp / "model.safetensors"))
        tensors, metadata = _optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"), metadata=metadata)
        write_json_atomic(tmp / "trainer_state.json", {**asdict(state), "rng": _python_numpy_rng()})
    _barrier(accelerator)
    if is_main:
        _fsync_dir(tmp)
        if final.exists():  # a re-save of the same step (e.g. final after periodic)
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_text_atomic(directory / LATEST, final.name + "\n")
        _prune(directory, keep)
    _barrier(accelerator)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    pointer = Path(directory) / LATEST
    if not pointer.is_file():
        return None
    path = Path(directory) / pointer.read_text().strip()
    return path if (path / "trainer_state.json").is_file() else None


def load_checkpoint(path: Path, model: Any, optimizer: torch.optim.Optimizer, *, accelerator: Any = None) -> TrainerState:
    """Restore weights, optimizer and RNG from ``path``; returns the saved trainer state."""
    path = Path(path)
    try:
        data = json.loads((path / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HeedfulError(f"{path}: unreadable checkpoint ({err})") from None
    if is_fsdp(accelerator):
        accelerator.load_state(str(path))
        _restore_python_numpy_rng(data.pop("rng"))
        return TrainerState(**data)
    unwrapped = accelerator.unwrap_model(model) if accelerator is not None else model
    params = trainable_state(unwrapped)
    weights = load_file(str(path / "model.safetensors"))
    if set(weights) != set(params):
        raise HeedfulError(f"{path}/model.safetensors: parameters do not match this run's model and method")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    _load_optimizer(optimizer, path / "optimizer.safetensors")
    rank = 0 if accelerator is None else accelerator.process_index
    rng_file = path / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():
        _restore_torch_rng(load_file(str(rng_file)))
    _restore_python_numpy_rng(data.pop("rng"))
    return TrainerState(**data)


def is_fsdp(accelerator: Any) -> bool:
    """Whether ``accelerator`` shards the model with FSDP (its state is then gathered to save it)."""
    return accelerator is not None and "FSDP" in str(getattr(accelerator, "distributed_type", ""))


def _barrier(accelerator: Any) -> None:
    if accelerator is not None and accelerator.num_processes > 1:
        accelerator.wait_for_everyone()


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir():
        with open(child, "rb") as handle:
            os.fsync(handle.fileno())


def _prune(directory: Path, keep: int | None) -> None:
    if keep is None:
        return
    done = sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
