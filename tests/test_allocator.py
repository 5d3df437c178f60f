"""heedful.allocator: the heedful command re-executes itself under tcmalloc where installed."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pytest

from heedful import allocator as alloc
from heedful.allocator import PRELOADED, allocator, find_tcmalloc, preload_env, training_warning

TCMALLOC = find_tcmalloc()
needs_tcmalloc = pytest.mark.skipif(TCMALLOC is None, reason="no tcmalloc installed (scripts/setup-env.sh installs it)")


def test_preload_env_prepends_tcmalloc_and_marks_the_process():
    env = preload_env({"LD_PRELOAD": "/lib/other.so", "PATH": "/bin"}, platform="linux", library="/lib/libtcmalloc.so.4")
    assert env == {"LD_PRELOAD": "/lib/libtcmalloc.so.4:/lib/other.so", "PATH": "/bin", PRELOADED: "/lib/libtcmalloc.so.4"}


@pytest.mark.parametrize("env, platform", [
    ({}, "darwin"),  # LD_PRELOAD is Linux's
    ({"HEEDFUL_ALLOCATOR": "system"}, "linux"),  # opted out
    ({PRELOADED: "/lib/libtcmalloc.so.4"}, "linux"),  # already re-executed: never loop
])
def test_preload_env_leaves_the_process_alone(env, platform):
    assert preload_env(env, platform=platform, library="/lib/libtcmalloc.so.4") is None


def test_preload_env_without_tcmalloc_is_none(monkeypatch):
    monkeypatch.setattr(alloc, "find_tcmalloc", lambda: None)
    assert preload_env({}, platform="linux") is None


def test_find_tcmalloc_prefers_the_minimal_library(tmp_path):
    (tmp_path / "libtcmalloc.so.4").touch()
    assert find_tcmalloc((str(tmp_path),)) == str(tmp_path / "libtcmalloc.so.4")
    (tmp_path / "libtcmalloc_minimal.so.4").touch()
    assert find_tcmalloc((str(tmp_path),)) == str(tmp_path / "libtcmalloc_minimal.so.4")
    assert find_tcmalloc((str(tmp_path / "none"),)) in (None, TCMALLOC)  # a conda/venv lib may still hold one


def test_allocator_reads_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n")
    assert allocator(str(maps)) == "tcmalloc"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert allocator(str(maps)) == "system"
    assert allocator(str(tmp_path / "missing")) == "system"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux's")
def test_training_warning_names_the_fix(monkeypatch):
    monkeypatch.setattr(alloc, "allocator", lambda: "system")
    monkeypatch.setattr(alloc, "find_tcmalloc", lambda: "/lib/libtcmalloc_minimal.so.4")
    assert "LD_PRELOAD=/lib/libtcmalloc_minimal.so.4" in training_warning("cpu")
    monkeypatch.setattr(alloc, "find_tcmalloc", lambda: None)
    assert "apt-get install libtcmalloc-minimal4" in training_warning("cpu")
    assert training_warning("cuda:0") is None
    monkeypatch.setattr(alloc, "allocator", lambda: "tcmalloc")
    assert training_warning("cpu") is None


def _allocator_after_reexec(**env: str) -> str:
    code = "from heedful.allocator import allocator, reexec_with_tcmalloc; reexec_with_tcmalloc(); print(allocator())"
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", PRELOADED, "HEEDFUL_ALLOCATOR")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}, check=True)
    return done.stdout.strip()


@needs_tcmalloc
def test_reexec_runs_the_same_command_under_tcmalloc():
    assert _allocator_after_reexec() == "tcmalloc"
    assert _allocator_after_reexec(HEEDFUL_ALLOCATOR="system") == "system"


def test_console_script_goes_through_the_reexec():
    (entry,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "heedful"]
    assert entry.value == "heedful.cli:run"
    script = os.path.join(os.path.dirname(sys.executable), "heedful")
    done = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
