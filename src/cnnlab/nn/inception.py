"""Inception building blocks shared by GoogLeNet (Inception v1) and Inception v3.

The Inception module (Szegedy et al. 2014, Figure 2) looks at the same input through 1×1, 3×3
and 5×5 convolutions and a 3×3 max pool side by side and concatenates the four outputs along
channels, so the next layer sees features of several scales at once. Its naive form is
expensive: the lecture's example (28×28×256 input; 128 1×1, 192 3×3 and 96 5×5 filters) costs
854M multiply-adds and, because the pool branch passes all 256 input maps through, its output
(672 maps) is always wider than its input. The dimension-reduced form puts cheap 1×1
convolutions (64 maps in the example) before the 3×3 and 5×5 convolutions and after the pool,
cutting the cost to 271M multiply-adds and the output to 480 maps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from cnnlab.errors import ConfigError

ConvBlock = Callable[..., nn.Module]
"""Builds ``conv → (norm) → ReLU`` from ``(in_channels, out_channels, kernel_size=, padding=)``."""

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_relu(
    in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 1, **conv_kwargs
) -> nn.Module:
    """A convolution with bias followed by ReLU: the unit of the 2014 GoogLeNet (no batch norm).

    ``conv_kwargs`` (``stride``, ``padding``) go to the convolution; the default padding is 0, as
    in :class:`torch.nn.Conv2d`.
    """
    conv_kwargs.setdefault("padding", 0)
    return Conv2dNormActivation(
        in_channels, out_channels, kernel_size, norm_layer=None, bias=True, **conv_kwargs
    )


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001) and ReLU, as in the BN-Inception nets.

    Written out rather than built with ``torchvision.ops.Conv2dNormActivation`` because the
    sub-module names ``conv`` and ``bn`` are the ones torchvision's GoogLeNet and Inception v3
    state dicts use.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 1,
        **conv_kwargs,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class InceptionModule(nn.Module):
    """GoogLeNet's Inception module, naive (Figure 2a) or with dimension reduction (Figure 2b).

    Give no reduction widths for the naive module; give all three (``ch3x3_reduce``,
    ``ch5x5_reduce``, ``pool_proj``) for the reduced one, the form of every module in
    GoogLeNet's Table 1. The branch names (``branch1`` … ``branch4``) are torchvision's.

    Args:
        in_channels: input maps.
        ch1x1: output maps of the 1×1 branch.
        ch3x3: output maps of the 3×3 branch.
        ch5x5: output maps of the 5×5 branch.
        ch3x3_reduce: 1×1 maps before the 3×3 convolution (reduced form only).
        ch5x5_reduce: 1×1 maps before the 5×5 convolution (reduced form only).
        pool_proj: 1×1 maps after the 3×3 max pool (reduced form only).
        conv_block: builds each convolution unit; :func:`conv_relu` (the paper's) by default,
            :class:`BasicConv2d` for the batch-norm variant.
        kernel_5x5: kernel of the "5×5" branch. torchvision's GoogLeNet uses 3 there
            (pytorch/vision#906); it is kept configurable so those weights load.

    Raises:
        ConfigError: if only some of the three reduction widths are given.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3: int,
        ch5x5: int,
        *,
        ch3x3_reduce: int | None = None,
        ch5x5_reduce: int | None = None,
        pool_proj: int | None = None,
        conv_block: ConvBlock = conv_relu,
        kernel_5x5: int = 5,
    ) -> None:
        super().__init__()
        reductions = (ch3x3_reduce, ch5x5_reduce, pool_proj)
        self.reduced = all(width is not None for width in reductions)
        if not self.reduced and any(width is not None for width in reductions):
            raise ConfigError(
                "an Inception module needs all of ch3x3_reduce, ch5x5_reduce and pool_proj "
                "(dimension-reduced form) or none of them (naive form)"
            )

        def branch(width_in: int, width_out: int, kernel: int, reduce: int | None) -> nn.Module:
            layers = []
            if reduce is not None:
                layers.append(conv_block(width_in, reduce, kernel_size=1))
                width_in = reduce
            layers.append(conv_block(width_in, width_out, kernel_size=kernel, padding=kernel // 2))
            return nn.Sequential(*layers)

        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = branch(in_channels, ch3x3, 3, ch3x3_reduce)
        self.branch3 = branch(in_channels, ch5x5, kernel_5x5, ch5x5_reduce)
        pool = nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True)
        if self.reduced:
            self.branch4 = nn.Sequential(pool, conv_block(in_channels, pool_proj, kernel_size=1))
        else:
            self.branch4 = nn.Sequential(pool)
        self.branch_widths = (ch1x1, ch3x3, ch5x5, pool_proj if self.reduced else in_channels)
        self.out_channels = sum(self.branch_widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], dim=1)

    def summary_note(self) -> str:
        """The concatenation, shown by ``cnnlab summary`` next to this module."""
        form = "reduced" if self.reduced else "naive"
        widths = "+".join(str(width) for width in self.branch_widths)
        return f"{form}: concat {widths} = {self.out_channels} maps"


def imagenet_to_inception_range(x: torch.Tensor) -> torch.Tensor:
    """Re-normalise ImageNet-normalised RGB images to ``(pixel - 0.5) / 0.5``.

    Google's released Inception weights expect inputs in [-1, 1]; torchvision's
    ``transform_input=True`` converts a normally preprocessed batch with this affine map.
    """
    if x.shape[1] != 3:
        raise ConfigError(
            f"transform_input re-normalises RGB images, but the input has {x.shape[1]} channels; "
            "build the model with transform_input=False"
        )
    scale = x.new_tensor([std / 0.5 for std in _IMAGENET_STD]).view(1, 3, 1, 1)
    shift = x.new_tensor([(mean - 0.5) / 0.5 for mean in _IMAGENET_MEAN]).view(1, 3, 1, 1)
    return x * scale + shift
