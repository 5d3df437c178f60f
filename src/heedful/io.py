"""Atomic file writes: a result file is either complete or absent, never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from heedful.errors import HeedfulError


def _write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file in ``path``'s folder, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are shared like any new file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and a rename."""
    _write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_npz_atomic(path: str | Path, **arrays: Any) -> None:
    """``numpy.savez_compressed`` to ``path``, atomically (lists of strings become string arrays)."""
    import numpy as np

    _write_atomic(path, lambda handle: np.savez_compressed(handle, **{k: np.asarray(v) for k, v in arrays.items()}))


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_text(path: str | Path, *, what: str = "file") -> str:
    """A UTF-8 text file; missing, unreadable or not UTF-8 is one ``HeedfulError`` naming it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HeedfulError(f"{path}: no such {what}") from None
    except UnicodeDecodeError as err:
        raise HeedfulError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise HeedfulError(f"{path}: cannot read: {err.strerror}") from None


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file that must hold an object; any problem is one ``HeedfulError`` naming the file."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise HeedfulError(f"{path}:{err.lineno}:{err.colno}: malformed JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise HeedfulError(f"{path}: expected a JSON object")
    return data
