"""Depthwise separable convolution: a k×k depthwise conv, then a 1×1 pointwise conv.

A standard k×k convolution from M to N channels filters and combines in one step and costs
D_K·D_K·M·N·D_G·D_G multiply-adds. Factorising it into a per-channel k×k filter (depthwise)
and a 1×1 combination (pointwise) costs D_K·D_K·M·D_G·D_G + M·N·D_G·D_G, a fraction
1/N + 1/D_K² of the standard one (MobileNet, Howard et al. 2017; Xception, Chollet 2017).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn
from torchvision.ops import Conv2dNormActivation

from cnnlab.errors import ConfigError

LayerFactory = Callable[..., nn.Module]


def separable_cost_ratio(out_channels: int, kernel_size: int) -> float:
    """Cost of a depthwise separable conv relative to the standard conv it replaces.

    The lecture's ratio ``1/N + 1/D_K²``: it holds for the multiply-adds and for the
    parameters alike, and does not depend on the number of input channels M.

    Args:
        out_channels: N, the number of output channels.
        kernel_size: D_K, the side of the square kernel.

    Returns:
        The ratio, e.g. 0.127 for N=64 and a 3×3 kernel (about 8× cheaper).

    Raises:
        ConfigError: if either argument is not a positive integer.
    """
    for name, value in (("out_channels", out_channels), ("kernel_size", kernel_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return 1 / out_channels + 1 / kernel_size**2


class SeparableConv2d(nn.Sequential):
    """A depthwise k×k convolution followed by a pointwise 1×1 convolution.

    MobileNet puts batch norm and ReLU after both convolutions (``depthwise_norm=True``);
    Xception keeps nothing between them (``depthwise_norm=False``, ``activation_layer=None``)
    because its blocks apply ReLU before the separable conv and batch norm after it.

    Args:
        in_channels: M, channels in (and out of the depthwise step).
        out_channels: N, channels out of the pointwise step.
        kernel_size: D_K of the depthwise filter.
        stride: stride of the depthwise filter (the pointwise step has stride 1).
        depthwise_norm: put ``norm_layer`` and ``activation_layer`` after the depthwise conv too.
        norm_layer: normalisation after the pointwise conv (and the depthwise one), or None.
        activation_layer: activation after the pointwise conv (and the depthwise one), or None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        depthwise_norm: bool = True,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        activation_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        depthwise = Conv2dNormActivation(
            in_channels,
            in_channels,
            kernel_size,
            stride,
            groups=in_channels,
            norm_layer=norm_layer if depthwise_norm else None,
            activation_layer=activation_layer if depthwise_norm else None,
            bias=False,
        )
        pointwise = Conv2dNormActivation(
            in_channels,
            out_channels,
            1,
            norm_layer=norm_layer,
            activation_layer=activation_layer,
            bias=False,
        )
        super().__init__(OrderedDict(depthwise=depthwise, pointwise=pointwise))
        self.out_channels = out_channels
        self.kernel_size = kernel_size

    def cost_ratio(self) -> float:
        """Multiply-adds of this block over those of the standard conv it replaces."""
        return separable_cost_ratio(self.out_channels, self.kernel_size)

    def summary_note(self) -> str:
        """The lecture's cost ratio, shown in the summary's note column."""
        n, k = self.out_channels, self.kernel_size
        return f"separable/standard = 1/N + 1/D_K² = 1/{n} + 1/{k * k} = {self.cost_ratio():.3f}"
