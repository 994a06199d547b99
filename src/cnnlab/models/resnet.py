"""Residual networks: He et al.'s ResNets, their plain twins, pre-activation ResNets, Wide ResNets.

One configurable :class:`ResNet` covers them all (ResNeXt too, see ``resnext.py``); the nets differ
only in the block, the stage depths and widths, the stem and the shortcut:

* ImageNet ResNets (He et al. 2016a, Table 1): 7x7 stem + max-pool, four stages of basic or
  bottleneck blocks, 1x1-projection shortcuts where the shape changes (option B). Module names
  and shapes are torchvision's, so ``load_state_dict(torchvision.models.resnet50().state_dict())``
  works unchanged. The stride of a bottleneck sits on its 3x3 conv, as in torchvision.
* CIFAR ResNets (He et al. 2016a, Sec. 4.2, Table 6): a 3x3 stem, three stages of n basic blocks
  with 16, 32, 64 channels (6n + 2 layers) and parameter-free zero-padding shortcuts (option A).
  ``plain*`` are the same stacks without shortcuts, for the degradation experiment (Fig. 6).
* Pre-activation ResNets (He et al. 2016b): BN-ReLU before each conv, a clean identity path, and
  a final BN-ReLU before pooling. As in the authors' released code, a block whose shortcut is a
  projection shares its first BN-ReLU with that projection, and the stem is a bare conv.
* Wide ResNets (Zagoruyko & Komodakis 2016): pre-activation basic blocks k times wider
  (16k, 32k, 64k), with optional dropout between the two convs.

Every net takes ``drop_path`` for stochastic depth (Huang et al. 2016), see
:mod:`cnnlab.nn.drop_path`: the drop probability of the last block (1 - p_L), decaying linearly
to 0 at the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.drop_path import DropPath, drop_probabilities
from cnnlab.nn.shortcut import ZeroPadShortcut

PAPER = "He et al. 2016"
PAPER_PREACT = "He et al. 2016b"
PAPER_WRN = "Zagoruyko & Komodakis 2016"

Shortcut = Literal["projection", "zero_pad", "none"]
Stem = Literal["imagenet", "cifar"]

IMAGENET_INPUT_SIZE = (3, 224, 224)
CIFAR_INPUT_SIZE = (3, 32, 32)
IMAGENET_PLANES = (64, 128, 256, 512)
CIFAR_PLANES = (16, 32, 64)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False
    )


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


# Optional layers are None rather than nn.Identity, so a summary lists only layers that act.
def _dropout(p: float) -> nn.Dropout | None:
    return nn.Dropout(p) if p > 0 else None


def _drop_path(p: float) -> DropPath | None:
    return DropPath(p) if p > 0 else None


def _apply(layer: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if layer is None else layer(x)


class BasicBlock(nn.Module):
    """Two 3x3 convs, BN-ReLU after each (He et al. 2016a, Fig. 5 left); torchvision's names."""

    expansion = 1
    preactivation = False

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        residual: bool = True,
        dropout: float = 0.0,
        drop_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = _dropout(dropout)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = _drop_path(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _apply(self.dropout, self.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        if self.residual:
            identity = x if self.downsample is None else self.downsample(x)
            out = _apply(self.drop_path, out) + identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand x4 (He et al. 2016a, Fig. 5 right).

    The inner width is ``planes * width_per_group / 64 * groups``: 64 wide for ResNet-50's first
    stage, 128 for Wide ResNet-50-2, 32 groups of 4 for ResNeXt-50 (32x4d). torchvision's names.
    A downsampling block strides its 3x3 convolution, as torchvision does ("ResNet v1.5");
    ``stride_in_1x1`` strides the first 1x1 instead, as the paper (and its Caffe models) did,
    which computes the 3x3 on a quarter of the positions: fewer MACs, same parameters.
    """

    expansion = 4
    preactivation = False

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        residual: bool = True,
        dropout: float = 0.0,
        drop_prob: float = 0.0,
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        first_stride, middle_stride = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = _conv1x1(inplanes, width, first_stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, middle_stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.dropout = _dropout(dropout)
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = _drop_path(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = _apply(self.dropout, self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        if self.residual:
            identity = x if self.downsample is None else self.downsample(x)
            out = _apply(self.drop_path, out) + identity
        return self.relu(out)


class PreActBasicBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, plus the untouched input (He et al. 2016b)."""

    expansion = 1
    preactivation = True

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        residual: bool = True,
        dropout: float = 0.0,
        drop_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = _dropout(dropout)
        self.conv2 = _conv3x3(planes, planes)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = _drop_path(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(_apply(self.dropout, self.relu(self.bn2(out))))
        if not self.residual:
            return out
        # A projection shortcut reads the activated input (shared BN-ReLU); identity reads x.
        identity = x if self.downsample is None else self.downsample(activated)
        return _apply(self.drop_path, out) + identity


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: BN-ReLU before each 1x1, 3x3, 1x1 conv (He et al. 2016b)."""

    expansion = 4
    preactivation = True

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        residual: bool = True,
        dropout: float = 0.0,
        drop_prob: float = 0.0,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = _conv1x1(inplanes, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, groups)
        self.bn3 = nn.BatchNorm2d(width)
        self.dropout = _dropout(dropout)
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = downsample
        self.residual = residual
        self.drop_path = _drop_path(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(_apply(self.dropout, self.relu(self.bn3(out))))
        if not self.residual:
            return out
        identity = x if self.downsample is None else self.downsample(activated)
        return _apply(self.drop_path, out) + identity


Block = type[BasicBlock] | type[Bottleneck] | type[PreActBasicBlock] | type[PreActBottleneck]


class ResNet(ImageClassifier):
    """A residual network: stem, stages of residual blocks, global average pool, linear classifier.

    Args:
        block: the block class (basic or bottleneck, post- or pre-activation).
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50, (9, 9, 9) for ResNet-56.
        planes: each stage's ``planes`` (its output width divided by ``block.expansion``).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool) or ``"cifar"`` (3x3 conv).
        stem_width: output channels of the stem conv.
        shortcut: where a block changes shape, ``"projection"`` (1x1 conv, option B) or
            ``"zero_pad"`` (option A); ``"none"`` removes every shortcut (a plain net).
        num_classes: outputs of the classifier.
        in_chans: channels of the input image.
        drop_path: stochastic depth, the drop probability of the last block (1 - p_L of Huang
            et al. 2016); ``True`` means their p_L = 0.5; 0 switches it off.
        dropout: dropout between the convolutions of every block (wide ResNets).
        groups, width_per_group: cardinality and width of bottleneck blocks (ResNeXt).
        stride_in_1x1: stride a bottleneck's first 1x1 convolution rather than its 3x3 (the
            paper's placement; see ``Bottleneck``).
    """

    classifier_layers = ("fc",)

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        planes: Sequence[int],
        *,
        stem: Stem,
        stem_width: int,
        shortcut: Shortcut = "projection",
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path: float | bool = 0.0,
        dropout: float = 0.0,
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != len(planes):
            raise ConfigError(f"{len(layers)} stage depths given for {len(planes)} stage widths")
        if shortcut not in ("projection", "zero_pad", "none"):
            raise ConfigError(
                f"unknown shortcut '{shortcut}': use 'projection', 'zero_pad' or 'none'."
            )
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"unknown stem '{stem}': use 'imagenet' or 'cifar'.")
        residual = shortcut != "none"
        drop_probs = drop_probabilities(sum(layers), drop_path)
        if not residual and drop_probs[-1] > 0:
            raise ConfigError(
                "drop_path needs shortcuts: a plain net has no residual branch to drop; "
                "use the matching resnet* model or drop_path=0."
            )
        block_kwargs: dict = {"dropout": dropout}
        if (groups, width_per_group) != (1, 64):
            if block.expansion == 1:
                raise ConfigError(
                    "groups and width_per_group shape bottleneck blocks (ResNeXt); this net "
                    "has basic blocks: use resnet50 or deeper, or a resnext* model"
                )
            block_kwargs.update(groups=groups, width_per_group=width_per_group)
        if stride_in_1x1:
            if block is not Bottleneck:
                raise ConfigError(
                    "stride_in_1x1 places the stride in a bottleneck block's first 1x1 "
                    "convolution; this net has no such blocks: use resnet50 or deeper"
                )
            block_kwargs["stride_in_1x1"] = True
        self.num_stages = len(layers)

        stem_stride = 2 if stem == "imagenet" else 1
        stem_kernel = 7 if stem == "imagenet" else 3
        self.conv1 = nn.Conv2d(
            in_chans, stem_width, stem_kernel, stem_stride, stem_kernel // 2, bias=False
        )
        # Pre-activation nets leave the stem bare: the first block normalises its input.
        self.bn1 = None if block.preactivation else nn.BatchNorm2d(stem_width)
        self.relu = None if block.preactivation else nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else None

        inplanes = stem_width
        block_index = 0
        stages = zip(layers, planes, strict=True)
        for stage, (num_blocks, stage_planes) in enumerate(stages, start=1):
            blocks = []
            for i in range(num_blocks):
                stride = 2 if stage > 1 and i == 0 else 1
                out_channels = stage_planes * block.expansion
                downsample = None
                if residual and (stride != 1 or inplanes != out_channels):
                    downsample = _shortcut(shortcut, block, inplanes, out_channels, stride)
                blocks.append(
                    block(
                        inplanes,
                        stage_planes,
                        stride,
                        downsample,
                        residual=residual,
                        drop_prob=drop_probs[block_index],
                        **block_kwargs,
                    )
                )
                inplanes = out_channels
                block_index += 1
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))

        self.final_activation = (
            nn.Sequential(nn.BatchNorm2d(inplanes), nn.ReLU(inplace=True))
            if block.preactivation
            else None
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self.num_features = inplanes
        self._init_weights()

    def _init_weights(self) -> None:
        """He (fan-out) init for convs and unit BN, as torchvision and He et al. 2015 do."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = _apply(self.maxpool, _apply(self.relu, _apply(self.bn1, self.conv1(x))))
        for stage in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        return _apply(self.final_activation, x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _shortcut(
    kind: Shortcut, block: Block, in_channels: int, out_channels: int, stride: int
) -> nn.Module:
    if kind == "zero_pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    if block.preactivation:  # the next block normalises, so the projection is a bare conv
        return _conv1x1(in_channels, out_channels, stride)
    return nn.Sequential(_conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def imagenet_resnet(
    block: Block, layers: Sequence[int], *, num_classes: int = 1000, in_chans: int = 3, **kwargs
) -> ResNet:
    """A four-stage ImageNet ResNet (He et al. 2016a, Table 1) with projection shortcuts."""
    return ResNet(
        block,
        layers,
        IMAGENET_PLANES,
        stem="imagenet",
        stem_width=64,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


def cifar_resnet(
    block: Block,
    num_blocks: int,
    planes: Sequence[int] = CIFAR_PLANES,
    *,
    shortcut: Shortcut,
    stem_width: int = 16,
    num_classes: int = 10,
    in_chans: int = 3,
    **kwargs,
) -> ResNet:
    """A CIFAR ResNet (He et al. 2016a, Sec. 4.2): ``num_blocks`` blocks in each of the stages
    ``planes`` (three by default), a 3x3 stem, 32x32 inputs."""
    return ResNet(
        block,
        (num_blocks,) * len(planes),
        planes,
        stem="cifar",
        stem_width=stem_width,
        shortcut=shortcut,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


def blocks_per_stage(depth: int, layers_per_block: int, extra_layers: int = 2) -> int:
    """n in depth = 3 * layers_per_block * n + extra_layers (6n+2, 9n+2, WRN's 6n+4)."""
    n, remainder = divmod(depth - extra_layers, 3 * layers_per_block)
    if remainder or n < 1:
        raise ConfigError(
            f"depth {depth} is not {3 * layers_per_block}n + {extra_layers} for a whole n >= 1; "
            f"pick e.g. {3 * layers_per_block + extra_layers} or "
            f"{3 * layers_per_block * 3 + extra_layers}."
        )
    return n


# --- ImageNet ResNets: He et al. 2016a, Table 1 --------------------------------------------------


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-18 (He et al. 2016a, Table 1): basic blocks [2, 2, 2, 2]; torchvision-compatible."""
    return imagenet_resnet(
        BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet34(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-34 (He et al. 2016a, Table 1): basic blocks [3, 4, 6, 3]; torchvision-compatible."""
    return imagenet_resnet(
        BasicBlock, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-50 (He et al. 2016a, Table 1): bottlenecks [3, 4, 6, 3]; torchvision-compatible."""
    return imagenet_resnet(
        Bottleneck, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet101(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-101 (He et al. 2016a, Table 1): bottlenecks [3, 4, 23, 3]; torchvision-compatible."""
    return imagenet_resnet(
        Bottleneck, (3, 4, 23, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet152(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-152 (He et al. 2016a, Table 1): bottlenecks [3, 8, 36, 3]; torchvision-compatible."""
    return imagenet_resnet(
        Bottleneck, (3, 8, 36, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet50_paper(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-50 as in He et al. 2016a, Table 1 ("3.8 x 10^9 FLOPs", multiply-adds).

    The paper's stride placement: a downsampling bottleneck strides its first 1x1 convolution,
    as the authors' Caffe models do, where torchvision's ``resnet50`` strides the 3x3 ("ResNet
    v1.5", 4.09 G multiply-adds against 3.86 G here). Same parameters and state dict keys.
    """
    return resnet50(num_classes=num_classes, in_chans=in_chans, stride_in_1x1=True, **kwargs)


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet101_paper(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-101 as in He et al. 2016a, Table 1 ("7.6 x 10^9 FLOPs"), with the paper's
    stride placement (see ``resnet50_paper``)."""
    return resnet101(num_classes=num_classes, in_chans=in_chans, stride_in_1x1=True, **kwargs)


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER)
def resnet152_paper(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-152 as in He et al. 2016a, Table 1 ("11.3 x 10^9 FLOPs"), with the paper's
    stride placement (see ``resnet50_paper``)."""
    return resnet152(num_classes=num_classes, in_chans=in_chans, stride_in_1x1=True, **kwargs)


# --- CIFAR-10 ResNets and plain nets: He et al. 2016a, Sec. 4.2, Table 6 -------------------------


def _cifar_basic(
    depth: int, shortcut: Shortcut, num_classes: int, in_chans: int, **kwargs
) -> ResNet:
    n = blocks_per_stage(depth, layers_per_block=2)
    return cifar_resnet(
        BasicBlock, n, shortcut=shortcut, num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def resnet20(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-20 for CIFAR-10 (He et al. 2016a, Table 6: 0.27M): n = 3, option-A shortcuts."""
    return _cifar_basic(20, "zero_pad", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def resnet32(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-32 for CIFAR-10 (He et al. 2016a, Table 6: 0.46M): n = 5, option-A shortcuts."""
    return _cifar_basic(32, "zero_pad", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def resnet44(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-44 for CIFAR-10 (He et al. 2016a, Table 6: 0.66M): n = 7, option-A shortcuts."""
    return _cifar_basic(44, "zero_pad", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def resnet56(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-56 for CIFAR-10 (He et al. 2016a, Table 6: 0.85M): n = 9, option-A shortcuts."""
    return _cifar_basic(56, "zero_pad", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def resnet110(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-110 for CIFAR-10 (He et al. 2016a, Table 6: 1.7M): n = 18, option-A shortcuts."""
    return _cifar_basic(110, "zero_pad", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def resnet1202(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-1202 for CIFAR-10 (He et al. 2016a, Table 6: 19.4M): n = 200, option-A shortcuts."""
    return _cifar_basic(1202, "zero_pad", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def plain20(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Plain-20 (He et al. 2016a, Fig. 6 left): ResNet-20 without shortcuts."""
    return _cifar_basic(20, "none", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def plain32(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Plain-32 (He et al. 2016a, Fig. 6 left): ResNet-32 without shortcuts."""
    return _cifar_basic(32, "none", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def plain44(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Plain-44 (He et al. 2016a, Fig. 6 left): ResNet-44 without shortcuts."""
    return _cifar_basic(44, "none", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def plain56(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Plain-56 (He et al. 2016a, Fig. 6 left): ResNet-56 without shortcuts."""
    return _cifar_basic(56, "none", num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER)
def plain110(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Plain-110 (He et al. 2016a, Sec. 4.2): ResNet-110 without shortcuts (fails to converge)."""
    return _cifar_basic(110, "none", num_classes, in_chans, **kwargs)


# --- Pre-activation ResNets: He et al. 2016b ----------------------------------------------------


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet18(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-18 (He et al. 2016b): ResNet-18's Table 1 layout, full pre-activation
    units (Fig. 4e)."""
    return imagenet_resnet(
        PreActBasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet34(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-34 (He et al. 2016b, Fig. 4e units on ResNet-34's layout)."""
    return imagenet_resnet(
        PreActBasicBlock, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-50 (He et al. 2016b, Fig. 4e units on ResNet-50's layout)."""
    return imagenet_resnet(
        PreActBottleneck, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet101(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-101 (He et al. 2016b, Table 5 lists its ImageNet results)."""
    return imagenet_resnet(
        PreActBottleneck, (3, 4, 23, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet152(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-152 (He et al. 2016b, Table 5 lists its ImageNet results)."""
    return imagenet_resnet(
        PreActBottleneck, (3, 8, 36, 3), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet110(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-110 for CIFAR (He et al. 2016b, Table 3: 1.7M): basic units,
    option-A shortcuts as in the original ResNet-110."""
    return cifar_resnet(
        PreActBasicBlock,
        blocks_per_stage(110, 2),
        shortcut="zero_pad",
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


def _cifar_preact_bottleneck(depth: int, num_classes: int, in_chans: int, **kwargs) -> ResNet:
    return cifar_resnet(
        PreActBottleneck,
        blocks_per_stage(depth, 3),
        shortcut="projection",
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet164(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-164 for CIFAR (He et al. 2016b, Table 3: 1.7M): 18 bottleneck units
    per stage (9n + 2 layers), outputs 64, 128, 256."""
    return _cifar_preact_bottleneck(164, num_classes, in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER_PREACT, family="preact_resnet")
def preact_resnet1001(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """Pre-activation ResNet-1001 for CIFAR (He et al. 2016b, Table 3: 10.2M): 111 bottleneck
    units per stage."""
    return _cifar_preact_bottleneck(1001, num_classes, in_chans, **kwargs)


# --- Wide ResNets: Zagoruyko & Komodakis 2016 ---------------------------------------------------


def wide_cifar_resnet(
    depth: int, widen_factor: int, *, num_classes: int = 10, in_chans: int = 3, **kwargs
) -> ResNet:
    """WRN-depth-k (Zagoruyko & Komodakis 2016, Table 1): pre-activation basic blocks of width
    16k, 32k, 64k, (depth - 4) / 6 per stage, 1x1 projections where the width changes.
    Pass ``dropout=0.3`` for the paper's dropout between the two convs of each block."""
    n = blocks_per_stage(depth, layers_per_block=2, extra_layers=4)
    planes = tuple(width * widen_factor for width in CIFAR_PLANES)
    return cifar_resnet(
        PreActBasicBlock,
        n,
        planes,
        shortcut="projection",
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER_WRN, family="wide_resnet")
def wrn_16_8(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """WRN-16-8 for CIFAR (Zagoruyko & Komodakis 2016, Table 1 with N=2, k=8; 11.0M parameters)."""
    return wide_cifar_resnet(16, 8, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER_WRN, family="wide_resnet")
def wrn_28_10(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """WRN-28-10 for CIFAR (Zagoruyko & Komodakis 2016, Table 1 with N=4, k=10; 36.5M)."""
    return wide_cifar_resnet(28, 10, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE, paper=PAPER_WRN, family="wide_resnet")
def wrn_40_4(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """WRN-40-4 for CIFAR (Zagoruyko & Komodakis 2016, Table 1 with N=6, k=4; 8.9M parameters)."""
    return wide_cifar_resnet(40, 4, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=IMAGENET_INPUT_SIZE, paper=PAPER_WRN, family="wide_resnet")
def wide_resnet50_2(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Wide ResNet-50-2 (Zagoruyko & Komodakis 2016, ImageNet Table: WRN-50-2-bottleneck,
    68.9M): ResNet-50 with bottlenecks twice as wide inside; torchvision-compatible."""
    return imagenet_resnet(
        Bottleneck,
        (3, 4, 6, 3),
        num_classes=num_classes,
        in_chans=in_chans,
        width_per_group=128,
        **kwargs,
    )
