"""MobileNet v1 (Howard et al. 2017): a VGG-like stack of depthwise separable convolutions.

Every 3×3 convolution after the first is factorised into a 3×3 depthwise and a 1×1 pointwise
convolution (each followed by BN and ReLU), which costs 1/N + 1/D_K² of the standard conv:
8 to 9 times fewer multiply-adds for 3×3 kernels. Two global knobs trade accuracy for cost:
the width multiplier α thins every layer (cost ~α²) and the resolution multiplier ρ shrinks
the input (cost ~ρ²).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.separable import SeparableConv2d

PAPER = "Howard et al. 2017"

# Table 1 of the paper after the stem conv (3×3, 32 maps, stride 2): (output channels, stride)
# of each depthwise separable layer. The last layer's stride is printed as 2 in the table but
# the output stays 7×7, so it is 1.
BODY: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *((512, 1),) * 5,
    (1024, 2),
    (1024, 1),
)
STEM_CHANNELS = 32
BASE_RESOLUTION = 224
MIN_RESOLUTION = 32  # five stride-2 stages leave 1×1 at 32×32


class MobileNetV1(ImageClassifier):
    """MobileNet v1 with width multiplier α and resolution multiplier ρ.

    Args:
        width_mult: α, scales the channels of every layer (1, 0.75, 0.5, 0.25 in the paper).
        resolution_mult: ρ, scales the 224×224 input side (192/224, 160/224, 128/224 in the
            paper); it only sets ``default_input_size`` (through the registry's
            :func:`input_size`), since the network itself takes any input of at least 32×32.
        body: (output channels, stride) of each depthwise separable layer, before α.
        num_classes: outputs of the classifier.
        in_chans: channels of the input image.
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        resolution_mult: float = 1.0,
        *,
        body: Sequence[tuple[int, int]] = BODY,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if width_mult <= 0 or int(STEM_CHANNELS * width_mult) < 1:
            raise ConfigError(
                f"width_mult α must leave at least one channel per layer, got {width_mult}; "
                "the paper uses 1.0, 0.75, 0.5 or 0.25"
            )
        resolution = input_size({"resolution_mult": resolution_mult})[-1]
        if resolution < MIN_RESOLUTION:
            raise ConfigError(
                f"resolution_mult ρ={resolution_mult} gives a {resolution}×{resolution} input, "
                f"below the {MIN_RESOLUTION}×{MIN_RESOLUTION} minimum; the paper uses ρ = "
                "1, 192/224, 160/224 or 128/224"
            )
        self.width_mult = width_mult
        self.resolution_mult = resolution_mult

        width = int(STEM_CHANNELS * width_mult)
        layers: list[nn.Module] = [Conv2dNormActivation(in_chans, width, 3, stride=2)]
        for channels, stride in body:
            out = int(channels * width_mult)
            layers.append(SeparableConv2d(width, out, 3, stride))
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)
        self.num_features = width

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


def input_size(options: dict[str, Any]) -> tuple[int, int, int]:
    """The input of a MobileNet of resolution multiplier ρ: 224·ρ square (Section 3.4, Table 7)."""
    side = round(BASE_RESOLUTION * options.get("resolution_mult", 1.0))
    return (3, side, side)


@register_model(input_size=input_size)
def mobilenet_v1(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    width_mult: float = 1.0,
    resolution_mult: float = 1.0,
    **kwargs,
) -> MobileNetV1:
    """1.0 MobileNet-224 (Howard et al. 2017, Table 1; Table 6: 4.2M params, 569M mult-adds).

    ``width_mult`` (α) and ``resolution_mult`` (ρ) give the other rows of Tables 6 and 7.
    """
    return MobileNetV1(
        width_mult, resolution_mult, num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=input_size)
def mobilenet_v1_075(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """0.75 MobileNet-224 (Howard et al. 2017, Table 6): 2.6M params, 325M mult-adds."""
    return MobileNetV1(0.75, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=input_size)
def mobilenet_v1_050(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """0.5 MobileNet-224 (Howard et al. 2017, Table 6): 1.3M params, 149M mult-adds."""
    return MobileNetV1(0.5, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=input_size)
def mobilenet_v1_025(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """0.25 MobileNet-224 (Howard et al. 2017, Table 6): 0.5M params, 41M mult-adds."""
    return MobileNetV1(0.25, num_classes=num_classes, in_chans=in_chans, **kwargs)
