"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep
convolutional neural networks", Section 3 and Fig. 2), as published and as torchvision builds it.

The paper's network: five convolutional and three fully connected layers, ReLU, local
response normalization after conv1 and conv2, overlapping 3×3/2 max-pooling, dropout in the
first two fully connected layers, and conv2/4/5 split across two GPUs. The five-conv,
three-FC layout is shared with ZFNet (``cnnlab.models.zfnet``), which changes only the
hyperparameters of the stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier

PAPER = "Krizhevsky et al. 2012"

#: Krizhevsky et al. 2012, Section 3.3: b = a / (k + alpha * sum over n maps of a^2)^beta.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0


def krizhevsky_lrn() -> nn.LocalResponseNorm:
    """Local response normalization with the paper's k = 2, n = 5, α = 1e-4, β = 0.75.

    torch's ``LocalResponseNorm`` divides ``alpha`` by ``size`` (the Caffe convention); the
    paper's formula does not, so the paper's α is passed as ``n * α``.
    """
    return nn.LocalResponseNorm(size=LRN_SIZE, alpha=LRN_SIZE * LRN_ALPHA, beta=LRN_BETA, k=LRN_K)


@dataclass(frozen=True)
class ConvStage:
    """One convolutional stage: conv, ReLU, then the ``after`` steps in order.

    ``after`` holds ``"lrn"`` (local response normalization) and ``"pool"`` (overlapping 3×3
    max-pooling at stride 2): AlexNet normalises then pools, ZFNet pools then normalises.
    """

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    after: tuple[str, ...] = ()


class AlexNetLayout(ImageClassifier):
    """``features`` -> ``avgpool`` -> flatten -> ``classifier``: torchvision's AlexNet and VGG.

    The head is the three fully connected layers; ``num_features`` is the width of the last
    convolution.
    """

    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Sequential

    @property
    def num_features(self) -> int:
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))


class TorchvisionAlexNet(AlexNetLayout, torchvision.models.AlexNet):
    """torchvision's AlexNet (same modules, same state dict) with the zoo's model API."""


class EightLayerConvNet(AlexNetLayout):
    """Five convolutional stages and three fully connected layers: the AlexNet layout.

    The attribute names (``features``, ``avgpool``, ``classifier``) follow torchvision's
    AlexNet. ``avgpool`` is an adaptive average pool to 6×6: the identity at the papers'
    input sizes (their last pool already gives 6×6), it lets smaller images through.

    Args:
        stages: the five convolutional stages.
        num_classes: output units.
        in_chans: input channels.
        hidden_units: width of the two hidden fully connected layers (4096 in both papers).
        dropout: dropout probability after each hidden fully connected layer.
        pool_ceil_mode: round pooled sizes up, as the cuda-convnet/Caffe pooling of ZFNet did.
    """

    def __init__(
        self,
        stages: Sequence[ConvStage],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        hidden_units: int = 4096,
        dropout: float = 0.5,
        pool_ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for stage in stages:
            if channels % stage.groups or stage.out_channels % stage.groups:
                raise ConfigError(
                    f"a stage with {stage.groups} groups needs input and output channels "
                    f"divisible by {stage.groups}, got {channels} -> {stage.out_channels}."
                )
            layers += [
                nn.Conv2d(
                    channels,
                    stage.out_channels,
                    stage.kernel_size,
                    stride=stage.stride,
                    padding=stage.padding,
                    groups=stage.groups,
                ),
                nn.ReLU(inplace=True),
            ]
            for step in stage.after:
                if step == "lrn":
                    layers.append(krizhevsky_lrn())
                elif step == "pool":
                    layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=pool_ceil_mode))
                else:
                    raise ConfigError(f"unknown stage step '{step}'; use 'lrn' or 'pool'.")
            channels = stage.out_channels
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 6 * 6, hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, num_classes),
        )


def alexnet_paper_stages(two_towers: bool = False) -> tuple[ConvStage, ...]:
    """The five stages of Krizhevsky et al. 2012, Fig. 2 and Section 3.5.

    With ``two_towers`` conv2, conv4 and conv5 see only the maps on their own GPU
    (``groups=2``); conv3 and the fully connected layers connect across both, as in the paper.
    """
    towers = 2 if two_towers else 1
    return (
        ConvStage(96, 11, stride=4, after=("lrn", "pool")),
        ConvStage(256, 5, padding=2, groups=towers, after=("lrn", "pool")),
        ConvStage(384, 3, padding=1),
        ConvStage(384, 3, padding=1, groups=towers),
        ConvStage(256, 3, padding=1, groups=towers, after=("pool",)),
    )


@register_model(input_size=(3, 227, 227), paper="Krizhevsky et al. 2012")
def alexnet_paper(
    *, num_classes: int = 1000, in_chans: int = 3, two_towers: bool = True, **kwargs
) -> EightLayerConvNet:
    """AlexNet as published: Krizhevsky et al. 2012, Section 3 and Fig. 2.

    96-256-384-384-256 filters, 11×11 stride 4 on 227×227 (the paper's "224" does not give
    its own 55×55 maps), LRN after conv1 and conv2, overlapping 3×3/2 max-pooling, dropout
    0.5 in the first two fully connected layers. Two towers, as in the paper and the lectures:
    conv2, conv4 and conv5 see only their own GPU's maps (conv2's filters are 5×5×48), giving
    60,965,224 parameters, the paper's "60 million"; ``two_towers=False`` joins them into one
    tower (62,378,344).
    """
    return EightLayerConvNet(
        alexnet_paper_stages(two_towers), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(input_size=(3, 224, 224), paper="Krizhevsky 2014")
def alexnet(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> TorchvisionAlexNet:
    """AlexNet as torchvision builds it: the one-tower variant of Krizhevsky 2014.

    "One weird trick for parallelizing convolutional neural networks" (arXiv:1404.5997):
    64-192-384-256-256 filters, no LRN. State dict identical to
    ``torchvision.models.alexnet``, so its weights load unchanged. Input 224×224.
    """
    model = TorchvisionAlexNet(num_classes=num_classes, **kwargs)
    if in_chans != 3:
        first = model.features[0]
        model.features[0] = nn.Conv2d(
            in_chans,
            first.out_channels,
            first.kernel_size,
            stride=first.stride,
            padding=first.padding,
        )
    return model
