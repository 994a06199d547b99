"""What a run segment ran on, in one line for ``metrics.csv``.

A long run may be resumed on another machine; its accuracy and speed per epoch only compare
across segments when each row says where it was computed: the CPU model and the instruction
sets that decide bf16 and matrix speed, the intra-op threads, the GPU if any, torch's version.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

# The CPU features that change what cnnlab computes or how fast: native bf16 (AMX, AVX-512
# BF16) and the widest vector units.
CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


@cache
def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and which of ``CPU_FLAGS`` it has (Linux; elsewhere unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU", ()
    model, flags = "unknown CPU", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, tuple(flag for flag in CPU_FLAGS if flag in flags)


def cpu_has(flag: str) -> bool:
    """Whether the CPU reports ``flag`` (one of ``CPU_FLAGS``) in /proc/cpuinfo."""
    return flag in _cpuinfo()[1]


def machine_summary(device: torch.device) -> str:
    """E.g. ``AMD EPYC 9B14 [avx512_bf16 avx512f avx2]; 2 threads; torch 2.14.1``."""
    model, flags = _cpuinfo()
    parts = [f"{model} [{' '.join(flags) or 'no avx2'}]", f"{torch.get_num_threads()} threads"]
    if device.type == "cuda":
        parts.append(torch.cuda.get_device_name(device))
    parts.append(f"torch {torch.__version__}")
    return "; ".join(parts)
