"""Residual shortcuts that change shape without adding parameters.

He et al. 2016 (Sec. 3.3 and 4.2) compare three shortcuts for a block that halves the feature map
and widens it: (A) identity with zero-padding for the new channels, (B) 1x1 projections where the
shape changes, (C) projections everywhere. Their CIFAR-10 nets use option A, so that a ResNet has
exactly as many parameters as its plain counterpart; option B is an ordinary 1x1 conv + BN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"a zero-padding shortcut cannot shrink {in_channels} to {out_channels} channels"
            )
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"
