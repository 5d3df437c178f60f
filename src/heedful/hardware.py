"""What this machine offers torch: native bfloat16 and the CPU cores free now.

``model.dtype: auto`` picks bfloat16 only where it is computed natively: on a CPU without
AVX512-BF16 or AMX torch emulates bf16 matmuls, several times slower than float32. The
thread count follows the cores other processes leave free: two busy thread pools on one
core make torch several times slower. torch is imported on use, so that a config can
resolve ``auto`` for its cache key, and provenance record the machine, without loading it
up front.
"""

from __future__ import annotations

import math
import os
import time

AUTO = "auto"
NATIVE_BF16_CPUS = ("AMX", "AVX512_BF16")
_LOAD_WINDOW_S = 60.0  # time constant of the 1-minute load average
_STARTED = (time.monotonic(), time.process_time())  # this process's CPU use is counted from here


def cpu_capability() -> str:
    """The CPU's vector instructions as torch uses them: ``AMX`` or ``AVX512_BF16`` where it
    computes bf16 natively, else torch's dispatch level (``AVX2``, ``AVX512``, ``DEFAULT``, ...)."""
    import torch

    # get_cpu_capability() says only AVX512 for both Skylake (no bf16) and Zen 4/Sapphire Rapids.
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        return "AMX"
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "AVX512_BF16"
    return torch.backends.cpu.get_cpu_capability()


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` (cpu, cuda, cuda:N, mps) computes bfloat16 natively."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cpu":
        return cpu_capability() in NATIVE_BF16_CPUS
    if kind == "cuda" and torch.cuda.is_available():
        gpu = int(index) if index.isdigit() else torch.cuda.current_device()
        if gpu >= torch.cuda.device_count():
            return False  # loading names the missing device
        # What torch.cuda.is_bf16_supported(including_emulation=False) checks, for this device.
        return bool(torch.version.hip) or torch.cuda.get_device_properties(gpu).major >= 8
    return False


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """``dtype`` as given, or for ``auto``: bfloat16 where ``device`` computes it natively, else float32."""
    if dtype.lower() != AUTO:
        return dtype
    return "bfloat16" if native_bf16(device) else "float32"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at most ``$OMP_NUM_THREADS`` if set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:  # a launcher's (Ray's, a batch system's) share for this process
        cores = min(cores, int(omp))
    return cores


def own_load() -> float:
    """This process's part of the 1-minute load average: its mean CPU use (in cores) since
    this module was imported, weighted as the average weighs a load that began then."""
    wall = time.monotonic() - _STARTED[0]
    if wall <= 0:
        return 0.0
    rate = (time.process_time() - _STARTED[1]) / wall
    return rate * (1.0 - math.exp(-wall / _LOAD_WINDOW_S))


def free_cores() -> tuple[int, float]:
    """``(cores free now, load of other processes)``: the usable cores less the 1-minute
    load average that is not this process's own, at least 1 (all usable ones where the
    load average is unknown)."""
    usable = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return usable, 0.0
    others = max(0.0, load - own_load())
    return max(1, min(usable, usable - round(others))), others
