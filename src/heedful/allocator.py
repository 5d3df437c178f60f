"""The memory allocator heedful runs under: tcmalloc where the machine has it.

Full fine-tuning on a CPU allocates and frees gigabytes of activations and gradients in
every step, in sizes that change with the batch. glibc's malloc serves them from its heap
and keeps the freed pages: measured on SmolLM2-135M (benchmarks/README.md), the process
held 1.3 GB more than it used at the peak, and up to a tenth of its CPU time went to the
kernel zeroing fresh pages. tcmalloc reuses freed memory by size class: the same training
ran 1.11x faster at 0.82x the peak memory (199 vs 179 tokens/s, 3.42 vs 4.18 GB). Scoring and generation allocate little
per step and measure the same under both.

An allocator must be in place before the process's first ``malloc``, so the ``heedful``
command re-executes itself once with tcmalloc in ``LD_PRELOAD`` (Linux only, where a
tcmalloc library is installed; ``HEEDFUL_ALLOCATOR=system`` keeps the system one).
Training warns when it runs on the CPU without it, and every results file records
which allocator ran (``environment.allocator``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

OPT_OUT = "HEEDFUL_ALLOCATOR"  # "system": never preload
PRELOADED = "HEEDFUL_PRELOADED"  # set on the re-executed process, so it never re-executes again
TCMALLOC_FILES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so", "libtcmalloc.so")
LIBRARY_DIRS = (
    "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
    "/usr/local/lib", "/opt/homebrew/lib",
)
INSTALL_HINT = "install tcmalloc (Debian/Ubuntu: apt-get install libtcmalloc-minimal4; Fedora: dnf install gperftools-libs)"


def find_tcmalloc(dirs: tuple[str, ...] = LIBRARY_DIRS) -> str | None:
    """The path of an installed tcmalloc library, or None."""
    prefixes = [os.environ.get("CONDA_PREFIX"), os.environ.get("VIRTUAL_ENV")]
    for folder in [f"{p}/lib" for p in prefixes if p] + list(dirs):
        for name in TCMALLOC_FILES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def allocator(maps: str = "/proc/self/maps") -> str:
    """The allocator this process runs under: ``tcmalloc``, ``jemalloc`` or ``system``."""
    try:
        with open(maps, encoding="utf-8", errors="replace") as mapped:
            text = mapped.read()
    except OSError:
        return "system"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in text:
            return name
    return "system"


def preload_env(env: Mapping[str, str], platform: str = sys.platform, library: str | None = None) -> dict[str, str] | None:
    """``env`` with tcmalloc added to ``LD_PRELOAD``, or None where this process should not
    re-execute: not Linux, opted out, already re-executed, or no tcmalloc installed."""
    if not platform.startswith("linux") or env.get(OPT_OUT, "").lower() == "system" or env.get(PRELOADED):
        return None
    library = library or find_tcmalloc()
    if library is None:
        return None
    preload = [library, *[p for p in env.get("LD_PRELOAD", "").split(":") if p]]
    return {**env, "LD_PRELOAD": ":".join(preload), PRELOADED: library}


def reexec_with_tcmalloc() -> None:
    """Replace this process by itself under tcmalloc (see the module docstring); returns where it does not."""
    env = preload_env(os.environ)
    if env is None or allocator() != "system":
        return
    argv = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError:  # the interpreter cannot be re-run (removed, no permission): go on as we are
        return


def training_warning(device: str) -> str | None:
    """One line for a CPU training run without tcmalloc on Linux, else None."""
    if not device.startswith("cpu") or not sys.platform.startswith("linux") or allocator() != "system":
        return None
    library = find_tcmalloc()
    if library is None:
        how = f"{INSTALL_HINT}; the heedful command then preloads it"
    else:
        how = f"run the heedful command (it preloads {library}) or start Python with LD_PRELOAD={library}"
    return f"training on the CPU with the system allocator: slower and more memory than with tcmalloc; {how}"
