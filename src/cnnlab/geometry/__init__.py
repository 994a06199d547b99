"""The conv/pool size arithmetic of the lectures and how sizes are written: a leaf.

Blocks (``cnnlab.nn``), models and the sizing table all need these formulas, so they live
below all of them and import nothing of cnnlab's but its errors.
"""

from cnnlab.geometry.arithmetic import (
    AxisWindow,
    GeometryWarning,
    ReceptiveField,
    conv_output_size,
    effective_kernel,
    fractional_output_size,
    padding_for_mode,
    receptive_field,
    same_padding,
    stacked_receptive_field,
)

__all__ = [
    "AxisWindow",
    "GeometryWarning",
    "ReceptiveField",
    "conv_output_size",
    "effective_kernel",
    "fractional_output_size",
    "padding_for_mode",
    "receptive_field",
    "same_padding",
    "stacked_receptive_field",
]
