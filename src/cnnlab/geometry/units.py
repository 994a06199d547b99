"""How sizes are written: ``64×224×224`` shapes, SI-prefixed counts, megabytes."""

from __future__ import annotations

MB = 10**6  # decimal megabytes, as the lectures count (24M values × 4 bytes ≈ 96 MB)
# torch computes a tensor's bytes as values × item size in int64: past 2**60 values even
# float64 overflows it (a meta tensor costs nothing, but its size must still fit)
MAX_TENSOR_VALUES = 2**60


def dims(shape: tuple[int, ...] | None, square: bool = False) -> str:
    """``64×224×224``; with ``square``, a field equal on every axis is shown once (``5``)."""
    if shape is None:
        return ""
    if square and len(set(shape)) == 1:
        return str(shape[0])
    return "×".join(str(s) for s in shape)


def si(value: int, unit: str = "") -> str:
    """``15.47 GMACs``: three significant decimals with a K/M/G/T prefix."""
    for factor, prefix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if value >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value} {unit}".rstrip()


def megabytes(size: int) -> str:
    return f"{size / MB:,.2f} MB"
