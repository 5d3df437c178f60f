"""What this machine offers torch: native bfloat16 and the CPU cores free now.

``model.dtype: auto`` picks bfloat16 only where it is computed natively: on a CPU without
AVX512-BF16 or AMX torch emulates bf16 matmuls, several times slower than float32. The
thread count follows the cores other processes leave free: two busy thread pools on one
core make torch several times slower. torch is imported on use, so that a config can
resolve ``auto`` for its cache key, and provenance record the machine, without loading it
up front.
"""

from __future__ import annotations

import os
import time

AUTO = "auto"
NATIVE_BF16_CPUS = ("AMX", "AVX512_BF16")
_SAMPLE_S = 0.2  # how long the CPUs are watched to count the busy ones


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


def _cpu_times() -> tuple[float, float] | None:
    """``(busy, total)`` clock ticks of all CPUs since boot (``/proc/stat``); None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if len(fields) < 5 or fields[0] != "cpu":
        return None
    ticks = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def others_busy(sample_s: float = _SAMPLE_S) -> float | None:
    """Cores that other processes keep busy now: the CPUs' busy ticks over ``sample_s``, less this
    process's own. None where the kernel does not say (no ``/proc/stat``).

    Measured now, not read from the load average: that one trails by a minute, so a process
    started right after a busy job would see the finished job's load and take too few threads.
    """
    before, own_before = _cpu_times(), time.process_time()
    if before is None:
        return None
    time.sleep(sample_s)
    after, own_after = _cpu_times(), time.process_time()
    if after is None or after[1] <= before[1]:
        return None
    ticks_per_core = (after[1] - before[1]) / (os.cpu_count() or 1)
    own = (own_after - own_before) * os.sysconf("SC_CLK_TCK")
    return max(0.0, (after[0] - before[0] - own) / ticks_per_core)


def free_cores() -> tuple[int, float]:
    """``(cores free now, cores other processes keep busy)``: the usable cores less the busy
    ones, at least 1 (all usable ones where the kernel does not say how busy they are)."""
    usable = usable_cores()
    others = others_busy()
    if others is None:
        return usable, 0.0
    return max(1, min(usable, usable - round(others))), others
