"""ResNeXt (Xie et al. 2017): residual bottlenecks whose 3x3 conv is split into C parallel groups.

"Cardinality" C is the number of groups and d the width of each; a 32x4d block aggregates 32
transformations 4 channels wide. Xie et al. show (Fig. 3) that C paths of the same topology are
exactly one grouped convolution, so a ResNeXt is :class:`cnnlab.models.resnet.ResNet` with
``groups=C`` and ``width_per_group=d`` in its bottlenecks, as torchvision builds it too.
"""

from __future__ import annotations

from cnnlab.models._registry import register_model
from cnnlab.models.resnet import (
    CIFAR_INPUT_SIZE,
    IMAGENET_INPUT_SIZE,
    Bottleneck,
    ResNet,
    cifar_resnet,
    imagenet_resnet,
)

PAPER = "Xie et al. 2017"


def _imagenet_resnext(
    layers: tuple[int, ...], width: int, num_classes: int, in_chans: int, **kwargs
) -> ResNet:
    """ResNet's ImageNet layout with bottlenecks of 32 groups of ``width`` channels."""
    return imagenet_resnet(
        Bottleneck,
        layers,
        groups=32,
        width_per_group=width,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(input_size=IMAGENET_INPUT_SIZE)
def resnext50_32x4d(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d) (Xie et al. 2017, Table 1): ResNet-50's layout with 32 groups of 4
    channels in the first stage's 3x3 convs; torchvision-compatible."""
    return _imagenet_resnext((3, 4, 6, 3), 4, num_classes, in_chans, **kwargs)


@register_model(input_size=IMAGENET_INPUT_SIZE)
def resnext101_32x8d(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNeXt-101 (32x8d): the ResNeXt-101 of Xie et al. 2017 (Table 1's template on
    ResNet-101's stages) with 32 groups of 8 channels, the variant torchvision ships;
    torchvision-compatible."""
    return _imagenet_resnext((3, 4, 23, 3), 8, num_classes, in_chans, **kwargs)


def cifar_resnext29(
    cardinality: int, width: int, *, num_classes: int = 10, in_chans: int = 3, **kwargs
) -> ResNet:
    """ResNeXt-29 for CIFAR (Xie et al. 2017, Sec. 5.3): a 3x3 conv with 64 filters, then three
    stages of three bottlenecks with outputs 256, 512, 1024 and ``cardinality`` groups of
    ``width`` channels (doubling per stage), 1x1-projection shortcuts; 9 * 3 + 2 = 29 layers."""
    return cifar_resnet(
        Bottleneck,
        3,
        (64, 128, 256),
        shortcut="projection",
        stem_width=64,
        groups=cardinality,
        width_per_group=width,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(input_size=CIFAR_INPUT_SIZE)
def resnext29_8x64d(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNeXt-29 (8x64d) for CIFAR (Xie et al. 2017, Table 7: 34.4M parameters)."""
    return cifar_resnext29(8, 64, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=CIFAR_INPUT_SIZE)
def resnext29_16x64d(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNeXt-29 (16x64d) for CIFAR (Xie et al. 2017, Table 7: 68.1M parameters)."""
    return cifar_resnext29(16, 64, num_classes=num_classes, in_chans=in_chans, **kwargs)
