"""The CIFAR-10 speedrun network: Page's fast ResNet-like net as slimmed down by Jordan.

Page (2018, "How to train your ResNet") showed that a small VGG-like network with residual-free
"conv-pool-BN-activation" groups trains to 94% on CIFAR-10 in minutes; Jordan (2024, "94% on
CIFAR-10 in 3.29 seconds on a single GPU", airbench94) reduced it to three groups behind a
2x2 patch-whitening convolution, with GELU activations, a 3x3 max-pool as global pooling and a
bias-free linear head whose output is scaled by 1/9. The tricks that make it train fast
(whitening and dirac initialisation, frozen BatchNorm scales, lookahead, alternating flips,
Muon) are engine features (``cnnlab.training.init``, ``TrainConfig``), not part of the net, so
any model can use them; this module only builds the layers.

Layers for CIFAR-10 (``speedrun_cifar_net()``, 1,972,792 parameters, Jordan 2024's widths):

==========  ==============================================  =============  ===========
stage       layers                                          output         parameters
==========  ==============================================  =============  ===========
whiten      conv 2x2, 24 filters, no padding, bias; GELU     24 x 31 x 31            312
block1      conv 3x3, 64; max-pool 2; BN; GELU;              64 x 15 x 15         50,944
            conv 3x3, 64; BN; GELU
block2      conv 3x3, 256; max-pool 2; BN; GELU;             256 x 7 x 7         738,304
            conv 3x3, 256; BN; GELU
block3      conv 3x3, 256; max-pool 2; BN; GELU;             256 x 3 x 3       1,180,672
            conv 3x3, 256; BN; GELU
pool        max-pool 3x3                                     256 x 1 x 1               0
head        linear 256 -> 10, no bias; x 1/9                 10                    2,560
==========  ==============================================  =============  ===========

BatchNorm uses Jordan's momentum 0.6 (torch's ``momentum=0.4``) and eps 1e-12.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier

PAPER = "Page 2018; Jordan 2024"

SPEEDRUN_WIDTHS = (64, 256, 256)
WHITEN_KERNEL = 2


class ConvGroup(nn.Sequential):
    """conv 3x3 -> max-pool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU (Page 2018's layer)."""

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float, bn_eps: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act2 = nn.GELU()


class Scale(nn.Module):
    """Multiply by a constant: Jordan's 1/9 on the logits, which sets the head's effective rate."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"


class SpeedrunNet(ImageClassifier):
    """Whitening conv, three conv groups, max-pool, scaled linear head (see the module table).

    Args:
        num_classes: outputs of the head.
        in_chans: input channels; the whitening conv has ``2 * in_chans * 2 * 2`` filters (each
            whitened patch direction and its negative, as Jordan 2024).
        widths: output channels of the three groups.
        logit_scale: factor on the head's output.
        bn_momentum: torch's BatchNorm momentum (Jordan's 0.6 is torch's 0.4).
        bn_eps: BatchNorm epsilon.
    """

    classifier_layers = ("head",)

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        widths: Sequence[int] = SPEEDRUN_WIDTHS,
        logit_scale: float = 1 / 9,
        bn_momentum: float = 0.4,
        bn_eps: float = 1e-12,
    ):
        super().__init__()
        whiten_width = 2 * in_chans * WHITEN_KERNEL**2
        self.whiten = nn.Conv2d(in_chans, whiten_width, WHITEN_KERNEL, bias=True)
        self.act = nn.GELU()
        channels = [whiten_width, *widths]
        self.block1, self.block2, self.block3 = (
            ConvGroup(channels[i], channels[i + 1], bn_momentum, bn_eps) for i in range(3)
        )
        self.pool = nn.MaxPool2d(3)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(channels[-1], num_classes, bias=False)
        self.scale = Scale(logit_scale)
        self.num_features = channels[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.whiten(x))
        return self.block3(self.block2(self.block1(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.head(self.flatten(self.pool(x))))


@register_model(input_size=(3, 32, 32), recipes=("speedrun_cifar",))
def speedrun_cifar_net(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> SpeedrunNet:
    """The CIFAR-10 speedrun net (Page 2018; Jordan 2024, airbench94's network).

    Train it with ``--recipe speedrun_cifar``, which switches on the whitening and dirac
    initialisation, frozen BatchNorm scales and Muon that the net was designed for.
    """
    return SpeedrunNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
