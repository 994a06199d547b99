"""Channel shuffle (Zhang et al. 2017, ShuffleNet).

Stacked group convolutions let each output group see only its own input group, so information
never crosses groups. Shuffling the channels between them (reshape to (g, C/g), transpose,
flatten) hands every group of the next group convolution a slice of every group of this one.
torch already has the operation (``nn.ChannelShuffle``); this module only names it in the
summary's note column.
"""

from __future__ import annotations

from torch import nn


class ChannelShuffle(nn.ChannelShuffle):
    """``torch.nn.ChannelShuffle`` that says what it does in the summary's note column."""

    def summary_note(self) -> str:
        """How the channels move, e.g. "(g, C/g) → (C/g, g), g=3"."""
        return f"(g, C/g) → (C/g, g), g={self.groups}"
