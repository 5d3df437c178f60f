"""heedful.hardware: which CPUs and GPUs compute bf16 natively, and how many cores are free."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from heedful import hardware
from heedful.hardware import cpu_capability, free_cores, native_bf16, resolve_dtype, usable_cores


def _cpu_flags() -> set[str]:
    """The kernel's CPU flags (the first processor's), an account independent of torch's cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64", reason="reads x86 flags")
def test_cpu_capability_agrees_with_the_kernels_cpu_flags() -> None:
    flags = _cpu_flags()
    expected = "AMX" if "amx_tile" in flags else "AVX512_BF16" if "avx512_bf16" in flags else None
    got = cpu_capability()
    if expected is not None:
        assert got == expected
    else:  # torch's own dispatch level; AVX512 without BF16 (Skylake, Ice Lake) is not native bf16
        assert got == torch.backends.cpu.get_cpu_capability() and not native_bf16("cpu")
    assert native_bf16("cpu") == (expected is not None)


@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"), [
    (True, True, "AMX"), (False, True, "AVX512_BF16"), (False, False, None),
])
def test_cpu_capability_names_the_bf16_instructions(monkeypatch, amx, avx512_bf16, expected) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert cpu_capability() == (expected or "AVX2")
    assert native_bf16("cpu") == (expected is not None)
    assert resolve_dtype("auto") == ("bfloat16" if expected else "float32")


def test_explicit_dtypes_pass_through(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "cpu_capability", lambda: "AMX")
    assert [resolve_dtype(d) for d in ("float32", "bf16", "float16")] == ["float32", "bf16", "float16"]
    assert resolve_dtype("AUTO") == "bfloat16"
    assert resolve_dtype("auto", "mps") == "float32"  # elsewhere float32, whatever the CPU


@pytest.mark.parametrize(("major", "expected"), [(8, "bfloat16"), (9, "bfloat16"), (7, "float32")])
def test_auto_on_cuda_follows_the_gpus_compute_capability(monkeypatch, major, expected) -> None:
    monkeypatch.setattr(hardware, "cpu_capability", lambda: "AVX2")  # the GPU decides, not the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.version, "hip", None)
    props = {0: 6, 1: major}  # the index in cuda:N picks the GPU
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(major=props[i]))
    assert resolve_dtype("auto", "cuda:1") == expected
    assert resolve_dtype("auto", "cuda") == "float32"  # current device 0: compute capability 6
    assert not native_bf16("cuda:5")  # missing GPU: loading reports it


def test_no_cuda_means_no_cuda_bf16(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_dtype("auto", "cuda") == "float32"


@pytest.fixture()
def machine(monkeypatch):
    """Four usable cores, no OMP limit; ``busy(cores)`` makes the CPUs look that busy over a sample."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(time, "sleep", lambda s: None)

    def busy(cores: float, own_s: float = 0.0) -> None:
        # 0.2 s at 100 ticks/s on 4 CPUs: 80 ticks in all, 20 per core.
        samples = iter([(1000.0, 5000.0), (1000.0 + 20 * cores, 5080.0)])
        clock = iter([10.0, 10.0 + own_s])
        monkeypatch.setattr(hardware, "_cpu_times", lambda: next(samples))
        monkeypatch.setattr(time, "process_time", lambda: next(clock))
        monkeypatch.setattr(os, "sysconf", lambda name: 100)

    return busy


@pytest.mark.parametrize(("busy", "free"), [(0.0, 4), (0.4, 4), (1.2, 3), (2.6, 1), (3.5, 1), (4.0, 1)])
def test_free_cores_are_usable_cores_less_the_busy_ones_clamped(machine, busy, free) -> None:
    machine(busy)
    cores, others = free_cores()
    assert cores == free and others == pytest.approx(busy)


def test_this_process_is_not_counted_as_busy(machine) -> None:
    machine(3.0, own_s=0.2)  # 0.2 s of our own CPU time in a 0.2 s window: one core
    assert free_cores() == (2, pytest.approx(2.0))


def test_omp_num_threads_caps_the_usable_cores(machine, monkeypatch) -> None:
    machine(0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert usable_cores() == 2 and free_cores() == (2, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: ignored
    assert usable_cores() == 4


def test_without_affinity_or_cpu_times_all_cores_are_free(monkeypatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(hardware, "_cpu_times", lambda: None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert usable_cores() == 3 and free_cores() == (3, 0.0)


def test_the_kernels_cpu_times_are_read_where_there_are_any() -> None:
    times = hardware._cpu_times()
    if not Path("/proc/stat").is_file():
        assert times is None
        return
    busy, total = times
    assert 0 <= busy <= total
    assert 0.0 <= hardware.others_busy(0.05) <= (os.cpu_count() or 1)
