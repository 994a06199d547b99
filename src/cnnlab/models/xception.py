"""Xception (Chollet 2017): Inception taken to the extreme, a linear stack of residual blocks of
depthwise separable convolutions.

An Inception module maps cross-channel and spatial correlations partly separately; Xception
assumes they can be mapped fully separately, which is exactly a depthwise separable conv.
The network (Fig. 5 of the paper) has an entry flow that downsamples 299×299 to 19×19, a
middle flow of eight identical residual blocks at 728 channels, and an exit flow. Every conv
and separable conv is followed by batch norm; there is no non-linearity between the depthwise
and the pointwise step, which the paper found to train best.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.separable import SeparableConv2d

PAPER = "Chollet 2017"


class XceptionBlock(nn.Module):
    """ReLU-SeparableConv-BN repeated, plus a shortcut (Fig. 5 of the paper).

    A stride-2 block ends with a 3×3/2 max pool and its shortcut is a 1×1/2 conv with batch
    norm; a stride-1 block with unchanged width adds its input as is.

    Args:
        in_channels: channels in.
        widths: output channels of each separable conv.
        stride: 1 or 2.
        relu_first: apply ReLU before the first separable conv (False in the first block,
            which follows a conv that already ends with ReLU).
    """

    def __init__(
        self, in_channels: int, widths: Sequence[int], stride: int = 1, *, relu_first: bool = True
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for index, width in enumerate(widths):
            if index > 0 or relu_first:
                # The first ReLU must not work in place: the shortcut still needs its input.
                layers.append(nn.ReLU(inplace=index > 0))
            layers.append(
                SeparableConv2d(channels, width, 3, depthwise_norm=False, activation_layer=None)
            )
            channels = width
        if stride == 2:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.residual = nn.Sequential(*layers)
        if stride == 1 and channels == in_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = Conv2dNormActivation(
                in_channels, channels, 1, stride, activation_layer=None
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class Xception(ImageClassifier):
    """Xception: entry flow, ``middle_repeats`` middle-flow blocks, exit flow, logistic layer.

    Args:
        middle_repeats: residual blocks in the middle flow (8 in the paper).
        num_classes: outputs of the classifier.
        in_chans: channels of the input image.
    """

    def __init__(
        self, middle_repeats: int = 8, *, num_classes: int = 1000, in_chans: int = 3
    ) -> None:
        super().__init__()
        if middle_repeats < 0:
            raise ConfigError(f"middle_repeats must be 0 or more, got {middle_repeats}")
        self.entry_flow = nn.Sequential(
            OrderedDict(
                conv1=Conv2dNormActivation(in_chans, 32, 3, stride=2, padding=0),
                conv2=Conv2dNormActivation(32, 64, 3, padding=0),
                block1=XceptionBlock(64, (128, 128), stride=2, relu_first=False),
                block2=XceptionBlock(128, (256, 256), stride=2),
                block3=XceptionBlock(256, (728, 728), stride=2),
            )
        )
        self.middle_flow = nn.Sequential(
            *(XceptionBlock(728, (728, 728, 728)) for _ in range(middle_repeats))
        )
        self.exit_flow = nn.Sequential(
            OrderedDict(
                block=XceptionBlock(728, (728, 1024), stride=2),
                sepconv1=SeparableConv2d(1024, 1536, 3, depthwise_norm=False),
                sepconv2=SeparableConv2d(1536, 2048, 3, depthwise_norm=False),
            )
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2048, num_classes)
        self.num_features = 2048

    def forward_features(self, x: Tensor) -> Tensor:
        return self.exit_flow(self.middle_flow(self.entry_flow(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


@register_model(input_size=(3, 299, 299))
def xception(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> Xception:
    """Xception (Chollet 2017, Fig. 5; Table 3: 22,855,952 parameters), 299×299 input."""
    return Xception(num_classes=num_classes, in_chans=in_chans, **kwargs)
