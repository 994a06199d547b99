"""Layer-by-layer sizing of any network, and the convolution arithmetic behind it.

``summary`` sizes a model (an ``nn.Module``, a registered name or a spec string) on the meta
device; the lectures' formulas live in ``cnnlab.geometry`` and are re-exported here.
"""

from cnnlab import geometry
from cnnlab.geometry import *  # noqa: F403 (re-exported: see __all__)
from cnnlab.sizing.summary import LayerRow, ModelSummary, parse_input_size, summary

__all__ = [
    *geometry.__all__,
    "LayerRow",
    "ModelSummary",
    "parse_input_size",
    "summary",
]
