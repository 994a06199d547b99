"""The machine a computation runs on: what it is called, and whether it does bf16 natively.

A long run may be resumed on another machine; its accuracy and speed per epoch only compare
across segments when each row of ``metrics.csv`` says where it was computed: the CPU model and
the instruction sets that decide bf16 and matrix speed, the intra-op threads, the GPU if any,
torch's version. Whether bf16 is native decides the precision of a run (autocast) and of Muon's
orthogonalisation, so it lives here, below both the engine and the optimizers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from cnnlab.errors import ConfigError

# The CPU features that change what cnnlab computes or how fast: native bf16 (AMX, AVX-512
# BF16) and the widest vector units.
CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


@cache
def _cpuinfo() -> tuple[str, tuple[str, ...]]:
    """The CPU's name and which of ``CPU_FLAGS`` it has (Linux; elsewhere unknown)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return "unknown CPU", ()


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """The first CPU's name in ``/proc/cpuinfo`` text, with its family and model numbers (a
    cloud's "AMD EPYC" names Zen 3, 4 and 5 alike, whose speeds differ by half), and which of
    ``CPU_FLAGS`` it reports."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() and fields:
            break  # the first processor's block is enough: all cores are the same model
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "unknown CPU")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    flags = set(fields.get("flags", "").split())
    return name, tuple(flag for flag in CPU_FLAGS if flag in flags)


def cpu_has(flag: str) -> bool:
    """Whether the CPU reports ``flag`` (one of ``CPU_FLAGS``) in /proc/cpuinfo."""
    return flag in _cpuinfo()[1]


def machine_summary(device: torch.device) -> str:
    """E.g. ``AMD EPYC (family 26 model 2) [avx512_bf16 avx512f avx2]; 2 threads; torch 2.14.1``."""
    model, flags = _cpuinfo()
    parts = [f"{model} [{' '.join(flags) or 'no avx2'}]", f"{torch.get_num_threads()} threads"]
    if device.type == "cuda":
        parts.append(torch.cuda.get_device_name(device))
    parts.append(f"torch {torch.__version__}")
    return "; ".join(parts)


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively: CUDA with bf16, or a CPU with AMX or AVX512-BF16.

    On CPUs without those instructions oneDNN emulates bf16, which is slower than float32, so
    autocast stays off there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if amx is not None and amx():
        return True
    return cpu_has("avx512_bf16") or cpu_has("amx_bf16")


def resolve_device(name: str) -> str:
    """The device ``name`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) made concrete and checked:
    ``auto`` is CUDA when available; a CUDA device that is not there is a ``ConfigError``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name} was asked for but no CUDA GPU is visible; use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"--device {name}: only {count} CUDA GPU(s) visible (cuda:0 to cuda:{count - 1})"
            )
    return name
