"""Layer-by-layer sizing of any network, and the convolution arithmetic behind it.

``summary`` sizes a model (an ``nn.Module``, a registered name or a spec string) on the meta
device; the lectures' formulas live in ``cnnlab.geometry`` and are re-exported here.
"""

from cnnlab.geometry import (
    GeometryWarning,
    ReceptiveField,
    conv_output_size,
    dropped_pixels,
    effective_kernel,
    fractional_output_size,
    padding_for_mode,
    receptive_field,
    same_padding,
    stacked_receptive_field,
)
from cnnlab.sizing.summary import LayerRow, ModelSummary, parse_input_size, summary

__all__ = [
    "GeometryWarning",
    "LayerRow",
    "ModelSummary",
    "ReceptiveField",
    "conv_output_size",
    "dropped_pixels",
    "effective_kernel",
    "fractional_output_size",
    "padding_for_mode",
    "parse_input_size",
    "receptive_field",
    "same_padding",
    "stacked_receptive_field",
    "summary",
]
