"""ShuffleNet v1 (Zhang et al. 2017): pointwise group convolutions made to talk by a shuffle.

In a small network the 1×1 convolutions dominate the cost, so ShuffleNet splits them into g
groups (g times cheaper) and, so that the groups do not become g isolated networks, shuffles
the channels between the first group conv of each unit and the next. Each unit is a bottleneck
(1×1 group conv, shuffle, 3×3 depthwise conv, 1×1 group conv) around a shortcut: an identity
added in stride-1 units, a 3×3 average pool concatenated in stride-2 units, which double the
width at almost no cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.shuffle import ChannelShuffle

PAPER = "Zhang et al. 2017"

# Table 1 of the paper: output channels of stages 2, 3 and 4 for each number of groups g, chosen
# so that every g costs about 140M mult-adds at 1×.
STAGE_WIDTHS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
STAGE_REPEATS = (4, 8, 4)  # units per stage; the first of each has stride 2
STEM_CHANNELS = 24
# The stem width the authors' release uses at the paper's four scales: 1.5× keeps 24 channels,
# which gives the paper's 292M mult-adds. Other scales scale the stem with the rest.
RELEASED_STEM_CHANNELS = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}


def make_divisible(value: float, divisor: int) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, and never below 90% of it.

    Scaled widths (``width_mult``) must stay divisible by the number of groups.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ShuffleUnit(nn.Module):
    """One ShuffleNet unit (Fig. 2b, stride 1, and Fig. 2c, stride 2, of the paper).

    Args:
        in_channels: channels in.
        out_channels: channels out; a stride-2 unit's branch makes ``out - in`` of them and
            concatenates the average-pooled input.
        groups: g of the pointwise group convolutions and of the shuffle.
        stride: 1 (identity shortcut, added) or 2 (average-pool shortcut, concatenated).
        group_first_conv: False for the very first unit, whose input is too thin to split
            (the paper: "we do not apply group convolution on the first pointwise layer").
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        groups: int,
        stride: int,
        *,
        group_first_conv: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"a ShuffleNet unit has stride 1 or 2, got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise ConfigError(
                f"a stride-1 ShuffleNet unit adds its input, so it needs in_channels == "
                f"out_channels, got {in_channels} and {out_channels}"
            )
        bottleneck = make_divisible(out_channels / 4, groups)
        branch_channels = out_channels - in_channels if stride == 2 else out_channels
        self.stride = stride
        self.compress = Conv2dNormActivation(
            in_channels, bottleneck, 1, groups=groups if group_first_conv else 1
        )
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.depthwise = Conv2dNormActivation(
            bottleneck, bottleneck, 3, stride, groups=bottleneck, activation_layer=None
        )
        self.expand = Conv2dNormActivation(
            bottleneck, branch_channels, 1, groups=groups, activation_layer=None
        )
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.expand(self.depthwise(self.shuffle(self.compress(x))))
        shortcut = self.shortcut(x)
        merged = torch.cat([shortcut, branch], 1) if self.stride == 2 else shortcut + branch
        return self.relu(merged)


class ShuffleNetV1(ImageClassifier):
    """ShuffleNet v1: a 3×3 stem, three stages of shuffle units, global pool, classifier.

    Args:
        groups: g ∈ {1, 2, 3, 4, 8}; selects the stage widths of Table 1.
        width_mult: s of "ShuffleNet s×", scales every width (0.5, 1, 1.5, 2 in the paper);
            scaled widths are rounded to multiples of g.
        stage_repeats: units per stage (4, 8, 4 in the paper).
        num_classes: outputs of the classifier.
        in_chans: channels of the input image.
    """

    def __init__(
        self,
        groups: int = 3,
        width_mult: float = 1.0,
        *,
        stage_repeats: Sequence[int] = STAGE_REPEATS,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if groups not in STAGE_WIDTHS:
            raise ConfigError(
                f"ShuffleNet v1 has stage widths for groups g in {sorted(STAGE_WIDTHS)}, "
                f"got g={groups}"
            )
        if width_mult <= 0:
            raise ConfigError(f"width_mult must be positive (0.5, 1, 1.5, 2), got {width_mult}")
        if len(stage_repeats) != 3 or min(stage_repeats) < 1:
            raise ConfigError(f"stage_repeats needs three positive counts, got {stage_repeats}")
        self.groups = groups
        self.width_mult = width_mult

        stem = RELEASED_STEM_CHANNELS.get(width_mult, STEM_CHANNELS * width_mult)
        width = make_divisible(stem, groups)
        self.stem = nn.Sequential(
            Conv2dNormActivation(in_chans, width, 3, stride=2),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        for stage, (base, repeats) in enumerate(
            zip(STAGE_WIDTHS[groups], stage_repeats, strict=True)
        ):
            out = make_divisible(base * width_mult, groups)
            units = [ShuffleUnit(width, out, groups, 2, group_first_conv=stage > 0)]
            units += [ShuffleUnit(out, out, groups, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            width = out
        self.stage2, self.stage3, self.stage4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stage4(self.stage3(self.stage2(self.stem(x))))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g1(
    *, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, **kwargs
) -> ShuffleNetV1:
    """ShuffleNet 1× g=1 (Zhang et al. 2017, Table 1): 143M mult-adds."""
    return ShuffleNetV1(1, width_mult, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g2(
    *, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, **kwargs
) -> ShuffleNetV1:
    """ShuffleNet 1× g=2 (Zhang et al. 2017, Table 1): 140M mult-adds."""
    return ShuffleNetV1(2, width_mult, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g3(
    *, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, **kwargs
) -> ShuffleNetV1:
    """ShuffleNet 1× g=3 (Zhang et al. 2017, Table 1): 137M mult-adds, 1.9M params."""
    return ShuffleNetV1(3, width_mult, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g4(
    *, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, **kwargs
) -> ShuffleNetV1:
    """ShuffleNet 1× g=4 (Zhang et al. 2017, Table 1): 133M mult-adds."""
    return ShuffleNetV1(4, width_mult, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g8(
    *, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, **kwargs
) -> ShuffleNetV1:
    """ShuffleNet 1× g=8 (Zhang et al. 2017, Table 1): 137M mult-adds."""
    return ShuffleNetV1(8, width_mult, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g3_x0_5(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ShuffleNetV1:
    """ShuffleNet 0.5× g=3 (Zhang et al. 2017, Table 1 widths × 0.5): 38M mult-adds."""
    return ShuffleNetV1(3, 0.5, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g3_x1_5(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ShuffleNetV1:
    """ShuffleNet 1.5× g=3 (Zhang et al. 2017, Table 1 widths × 1.5): 292M mult-adds."""
    return ShuffleNetV1(3, 1.5, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def shufflenet_v1_g3_x2_0(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ShuffleNetV1:
    """ShuffleNet 2× g=3 (Zhang et al. 2017, Table 1 widths × 2): 524M mult-adds."""
    return ShuffleNetV1(3, 2.0, num_classes=num_classes, in_chans=in_chans, **kwargs)
