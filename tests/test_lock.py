"""requirements/lock.txt is the tested set: it must pin every dependency pyproject.toml declares,
each inside its declared range, and the venv the suite runs in must hold exactly those pins.
A change to pyproject.toml without `bash scripts/lock.sh` fails here, not on a user's machine.
"""

from __future__ import annotations

import os
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCKED_EXTRAS = ("test", "embeddings", "bench")  # what scripts/setup-env.sh installs


def pins(path: Path) -> dict[str, Version]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, ver = line.partition("==")
            out[canonicalize_name(name)] = Version(ver.strip())
    return out


LOCK = pins(ROOT / "requirements" / "lock.txt")
DECLARED = [Requirement(r) for r in PROJECT["dependencies"]] + [
    Requirement(r) for extra in LOCKED_EXTRAS for r in PROJECT["optional-dependencies"][extra]
]


@pytest.mark.parametrize("requirement", DECLARED, ids=str)
def test_every_declared_dependency_is_pinned_inside_its_range(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in LOCK, f"{requirement.name} is not in requirements/lock.txt: run bash scripts/lock.sh"
    assert requirement.specifier.contains(LOCK[name], prereleases=True), (
        f"lock pins {requirement.name}=={LOCK[name]}, outside pyproject's '{requirement.specifier}'"
    )


def test_the_running_environment_is_the_lock() -> None:
    """Catches a venv that drifted from the lock (the suite would then test something else)."""
    drifted = []
    for name, pinned in {**LOCK, **pins(ROOT / "requirements" / "no-deps.txt")}.items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            drifted.append(f"{name} missing")
            continue
        if installed.public != pinned.public:
            drifted.append(f"{name} {installed} (lock {pinned})")
    if drifted and os.environ.get("HEEDFUL_LATEST"):
        pytest.skip(f"scripts/test.sh --latest: {len(drifted)} installed versions differ from the lock, on purpose")
    assert not drifted, "installed versions differ from the lock: " + ", ".join(drifted)
