"""DenseNet (Huang et al. 2017): every layer sees the feature maps of all layers before it.

Inside a dense block layer ℓ receives the concatenation [x_0, ..., x_(ℓ-1)], so it has
k0 + k·(ℓ−1) input maps, where k0 is the block's input width and k, the growth rate, is the
number of maps each layer adds. Transition layers (BN-ReLU-1×1 conv-2×2 average pool) between
blocks halve the resolution and, in DenseNet-BC, compress the width by θ = 0.5.

The ImageNet models keep torchvision's module names, so torchvision's weights load unchanged.
The class is written here rather than taken from torchvision because the CIFAR DenseNet-BC needs
a different stem, ``in_chans`` and the compression factor are not configurable there, and each
layer reports its k0 + k(ℓ−1) input width in the summary.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier

PAPER = "Huang et al. 2017"

STEMS = ("imagenet", "cifar")


class DenseLayer(nn.Module):
    """H_ℓ of DenseNet-B: BN-ReLU-1×1 conv (bottleneck, bn_size·k maps) then BN-ReLU-3×3 conv.

    Args:
        block_input_features: k0, the number of maps entering the dense block.
        growth_rate: k, the number of maps this layer adds.
        index: ℓ, the 1-based position of the layer in its block.
        bn_size: bottleneck width in multiples of k (4 in the paper).
        drop_rate: dropout after the 3×3 conv (0.2 in the paper's runs without augmentation).
    """

    def __init__(
        self,
        block_input_features: int,
        growth_rate: int,
        index: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.block_input_features = block_input_features
        self.growth_rate = growth_rate
        self.index = index
        in_features = self.in_features
        bottleneck = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bottleneck, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bottleneck, growth_rate, kernel_size=3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate)

    @property
    def in_features(self) -> int:
        """k0 + k·(ℓ−1): the maps of the block input and of the ℓ−1 layers before this one."""
        return self.block_input_features + self.growth_rate * (self.index - 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.dropout(self.conv2(self.relu2(self.norm2(x))))

    def summary_note(self) -> str:
        """The lecture's input width, e.g. "in = k0 + k(l−1) = 64 + 32·5 = 224"."""
        k0, k, l = self.block_input_features, self.growth_rate, self.index
        return f"in = k0 + k(l−1) = {k0} + {k}·{l - 1} = {self.in_features}"


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each fed the concatenation of the block input and all
    earlier layers' outputs; the block returns the concatenation of all of them."""

    def __init__(
        self, num_layers: int, in_features: int, growth_rate: int, bn_size: int, drop_rate: float
    ) -> None:
        super().__init__(
            {
                f"denselayer{index}": DenseLayer(
                    in_features, growth_rate, index, bn_size=bn_size, drop_rate=drop_rate
                )
                for index in range(1, num_layers + 1)
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1×1 conv-2×2 average pool: halves the resolution, compresses the width by θ."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_features),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(in_features, out_features, kernel_size=1, bias=False),
                pool=nn.AvgPool2d(kernel_size=2, stride=2),
            )
        )

    def summary_note(self) -> str:
        """The compression, e.g. "θ·m = 0.5·256 = 128"."""
        m, out = self.conv.in_channels, self.conv.out_channels
        return f"θ·m = {out / m:g}·{m} = {out}"


class DenseNet(ImageClassifier):
    """DenseNet-BC: dense blocks of bottleneck layers joined by compressing transitions.

    Args:
        growth_rate: k, the maps each dense layer adds.
        block_config: the number of dense layers in each block.
        num_init_features: width of the stem convolution (2k in DenseNet-BC).
        bn_size: bottleneck width of each layer in multiples of k.
        compression: θ, the fraction of maps a transition keeps (0.5 in DenseNet-BC).
        drop_rate: dropout after each dense layer's 3×3 conv.
        stem: ``"imagenet"`` (7×7/2 conv, BN, ReLU, 3×3/2 max pool; 224×224 input) or
            ``"cifar"`` (one 3×3 conv; 32×32 input).
        num_classes: outputs of the classifier.
        in_chans: channels of the input image.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        *,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        stem: str = "imagenet",
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ConfigError(f"unknown DenseNet stem '{stem}'; use one of {', '.join(STEMS)}")
        if not 0 < compression <= 1:
            raise ConfigError(f"compression θ must be in (0, 1], got {compression}")
        if growth_rate < 1 or not block_config or min(block_config) < 1:
            raise ConfigError(
                f"growth_rate and every block size must be positive, got k={growth_rate}, "
                f"blocks={tuple(block_config)}"
            )
        if stem == "imagenet":
            layers = OrderedDict(
                conv0=nn.Conv2d(in_chans, num_init_features, 7, stride=2, padding=3, bias=False),
                norm0=nn.BatchNorm2d(num_init_features),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        else:
            layers = OrderedDict(
                conv0=nn.Conv2d(in_chans, num_init_features, 3, padding=1, bias=False)
            )

        width = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            layers[f"denseblock{i}"] = DenseBlock(
                num_layers, width, growth_rate, bn_size=bn_size, drop_rate=drop_rate
            )
            width += num_layers * growth_rate
            if i < len(block_config):
                compressed = int(width * compression)
                layers[f"transition{i}"] = Transition(width, compressed)
                width = compressed
        layers["norm5"] = nn.BatchNorm2d(width)
        self.features = nn.Sequential(layers)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)
        self.num_features = width

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.relu(self.features(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


def _imagenet(growth_rate: int, blocks: Sequence[int], init: int, **kwargs) -> DenseNet:
    return DenseNet(growth_rate, blocks, init, stem="imagenet", **kwargs)


def _cifar_bc(depth: int, growth_rate: int, **kwargs) -> DenseNet:
    # Depth L counts the stem conv, the 2 convs of every bottleneck layer, the 2 transition
    # convs and the classifier: L = 6n + 4 for three blocks of n layers.
    per_block = (depth - 4) // 6
    return DenseNet(growth_rate, (per_block,) * 3, 2 * growth_rate, stem="cifar", **kwargs)


@register_model(input_size=(3, 224, 224))
def densenet121(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017, Table 1): k=32, blocks 6-12-24-16; 7,978,856 params."""
    return _imagenet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def densenet161(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-161 (Huang et al. 2017, Table 1): k=48, blocks 6-12-36-24, 96-map stem."""
    return _imagenet(48, (6, 12, 36, 24), 96, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def densenet169(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017, Table 1): k=32, blocks 6-12-32-32."""
    return _imagenet(32, (6, 12, 32, 32), 64, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def densenet201(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-201 (Huang et al. 2017, Table 1): k=32, blocks 6-12-48-32."""
    return _imagenet(32, (6, 12, 48, 32), 64, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 224, 224))
def densenet264(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-264 (Huang et al. 2017, Table 1): k=32, blocks 6-12-64-48; 33.3M params.

    Table 1's blocks give 265 weighted layers (1 + 2·130 + 3 + 1). The ~70M often quoted for
    DenseNet-264 belongs to variants with growth rate k=48.
    """
    return _imagenet(32, (6, 12, 64, 48), 64, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 32, 32))
def densenet_bc_100_12(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC L=100, k=12 for CIFAR (Huang et al. 2017, Table 2): 0.8M params."""
    return _cifar_bc(100, 12, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 32, 32))
def densenet_bc_250_24(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC L=250, k=24 for CIFAR (Huang et al. 2017, Table 2): 15.3M params."""
    return _cifar_bc(250, 24, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 32, 32))
def densenet_bc_190_40(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC L=190, k=40 for CIFAR (Huang et al. 2017, Table 2): 25.6M params."""
    return _cifar_bc(190, 40, num_classes=num_classes, in_chans=in_chans, **kwargs)
