"""VGG (Simonyan & Zisserman 2014, "Very deep convolutional networks for large-scale image
recognition", Table 1): configurations A, A-LRN, B, C, D, E, with optional batch norm.

Stacks of 3×3 convolutions (stride 1, pad 1) between 2×2/2 max-pools, then three fully
connected layers. The network class is torchvision's ``VGG``, so the state dicts of A, B, D
and E (with or without batch norm) are torchvision's and its weights load unchanged; cnnlab
builds the feature stacks itself because torchvision has no A-LRN and no C (1×1 convs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torchvision
from torch import nn

from cnnlab.models._registry import register_model
from cnnlab.models.alexnet import AlexNetLayout, krizhevsky_lrn

PAPER = "Simonyan & Zisserman 2014"
INPUT_SIZE = (3, 224, 224)  # Section 2.1: "a fixed-size 224 × 224 RGB image"

#: One entry per layer of Table 1: an int is a 3×3 convolution with that many filters,
#: ``(filters, 1)`` a 1×1 convolution (configuration C), "M" a 2×2/2 max-pool and "LRN" the
#: local response normalization of A-LRN (Krizhevsky et al.'s parameters, Section 2.1).
VGG_CONFIGS: dict[str, list[int | str | tuple[int, int]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [
        64, 64, "M", 128, 128, "M",
        256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M",
    ],
    "D": [
        64, 64, "M", 128, 128, "M",
        256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
    ],
    "E": [
        64, 64, "M", 128, 128, "M",
        256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ],
}  # fmt: skip


class VGG(AlexNetLayout, torchvision.models.VGG):
    """torchvision's VGG (same modules, same state dict) with the zoo's model API."""


def vgg_features(
    config: Sequence[int | str | tuple[int, int]], *, in_chans: int = 3, batch_norm: bool = False
) -> nn.Sequential:
    """The convolutional part of a VGG configuration, indexed exactly as torchvision's.

    Each convolution is followed by batch norm (if asked) and an in-place ReLU; the layer
    order, and so the state-dict keys, match ``torchvision.models.vgg.make_layers``.
    """
    layers: list[nn.Module] = []
    channels = in_chans
    for entry in config:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif entry == "LRN":
            layers.append(krizhevsky_lrn())
        else:
            filters, kernel = entry if isinstance(entry, tuple) else (entry, 3)
            layers.append(nn.Conv2d(channels, filters, kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(filters))
            layers.append(nn.ReLU(inplace=True))
            channels = filters
    return nn.Sequential(*layers)


def build_vgg(
    config: str, *, num_classes: int, in_chans: int, batch_norm: bool = False, **kwargs
) -> VGG:
    """A VGG network for one of the keys of ``VGG_CONFIGS``.

    ``kwargs`` go to ``torchvision.models.VGG`` (``dropout``, ``init_weights``).
    """
    features = vgg_features(VGG_CONFIGS[config], in_chans=in_chans, batch_norm=batch_norm)
    return VGG(features, num_classes=num_classes, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014")
def vgg11(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration A, 11 weight layers: Simonyan & Zisserman 2014, Table 1."""
    return build_vgg("A", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014")
def vgg11_lrn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration A-LRN: A with LRN after the first layer (Table 1).

    The paper's evidence that LRN does not help (Table 3: A-LRN is no better than A).
    """
    return build_vgg("A-LRN", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014")
def vgg13(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration B, 13 weight layers: Simonyan & Zisserman 2014, Table 1."""
    return build_vgg("B", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014")
def vgg16_c(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration C, 16 weight layers with a 1×1 conv ending blocks 3-5 (Table 1).

    The paper's test of extra non-linearity without extra receptive field (C beats B, but
    D, with 3×3 in those places, beats C: spatial context matters).
    """
    return build_vgg("C", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014")
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration D, 16 weight layers: Simonyan & Zisserman 2014, Table 1."""
    return build_vgg("D", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014")
def vgg19(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration E, 19 weight layers: Simonyan & Zisserman 2014, Table 1."""
    return build_vgg("E", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014; Ioffe & Szegedy 2015")
def vgg11_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration A (Table 1 of Simonyan & Zisserman 2014) with batch norm."""
    return build_vgg("A", num_classes=num_classes, in_chans=in_chans, batch_norm=True, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014; Ioffe & Szegedy 2015")
def vgg13_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration B (Table 1 of Simonyan & Zisserman 2014) with batch norm."""
    return build_vgg("B", num_classes=num_classes, in_chans=in_chans, batch_norm=True, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014; Ioffe & Szegedy 2015")
def vgg16_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration D (Table 1 of Simonyan & Zisserman 2014) with batch norm."""
    return build_vgg("D", num_classes=num_classes, in_chans=in_chans, batch_norm=True, **kwargs)


@register_model(input_size=INPUT_SIZE, paper="Simonyan & Zisserman 2014; Ioffe & Szegedy 2015")
def vgg19_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG configuration E (Table 1 of Simonyan & Zisserman 2014) with batch norm."""
    return build_vgg("E", num_classes=num_classes, in_chans=in_chans, batch_norm=True, **kwargs)
