"""What this machine can do, in the words a figure needs beside it.

A throughput or a wall time means little without the machine it came from: the same code runs
1.3x faster in bf16 on a CPU with AVX512-BF16 and cannot run bf16 natively at all on one with
AVX2 only. `describe()` gathers the CPU's name, its cores, the vector extensions that decide
which kernels torch picks, whether bf16 is native (asked of torch, as `aebench.precision`
does) and the GPU; `label()` turns that into the one line printed beside every figure, and
`machine_id()` into the short key under which benchmarks file the figures of one machine so
that figures of two machines never meet in one ratio.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

# The x86 extensions that change which kernels run, widest first (cpuinfo's spelling).
VECTOR_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "avx")
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo cannot be read)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name(cpuinfo: Path = CPUINFO) -> str:
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(cpuinfo: Path = CPUINFO) -> dict:
    """The machine as a JSON-ready dict: CPU, cores, vector extensions, native bf16, GPU."""
    import torch

    from aebench.precision import native_bf16

    flags = cpu_flags(cpuinfo)
    return {
        "cpu": cpu_name(cpuinfo),
        "arch": platform.machine() or "unknown",
        "cores": os.cpu_count(),
        "vector_flags": [f for f in VECTOR_FLAGS if f in flags],
        "cpu_native_bf16": native_bf16("cpu"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def label(info: dict | None = None) -> str:
    """'x86_64, 2 CPU cores, AMD EPYC (avx2)': the CPU and its widest vector extension."""
    info = info or describe()
    widest = next(iter(info.get("vector_flags") or []), None)
    text = f"{info['arch']}, {info['cores']} CPU cores, {info['cpu']}" + (f" ({widest})" if widest else "")
    return text + (f", {info['gpu']}" if info.get("gpu") else "")


def machine_id(info: dict | None = None) -> str:
    """A short key for the machine: 'amd-epyc-2c-avx2'."""
    info = info or describe()
    widest = next(iter(info.get("vector_flags") or []), "novec")
    cpu = re.sub(r"[^a-z0-9]+", "-", info["cpu"].lower()).strip("-")
    gpu = "-" + re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-") if info.get("gpu") else ""
    return f"{cpu}-{info['cores']}c-{widest.replace('_', '-')}{gpu}"
