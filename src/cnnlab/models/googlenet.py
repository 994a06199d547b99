"""GoogLeNet (Inception v1): nine Inception modules, 22 layers, about 7M parameters.

``googlenet_paper`` is the network of Szegedy et al. 2014 as published: convolutions with bias
and ReLU, local response normalisation, two auxiliary classifiers whose losses are added with
weight 0.3 during training and which are dropped at inference. ``googlenet`` is torchvision's
batch-norm variant with its key names, so torchvision's weights load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnnlab.errors import GeometryError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.inception import (
    BasicConv2d,
    ConvBlock,
    InceptionModule,
    conv_relu,
    imagenet_to_inception_range,
)

PAPER = "Szegedy et al. 2014"

INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    # Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

INPUT_SIZE = (3, 224, 224)  # Section 5 and Table 1: 224×224 RGB images
AUX_LOSS_WEIGHT = 0.3
"""Weight of each auxiliary classifier's loss in the total training loss (Section 5)."""


class AuxClassifier(nn.Module):
    """The side classifier on inception 4a and 4d (Section 5 of the paper).

    Average pool to 4×4, a 1×1 convolution to 128 maps, a 1024-unit fully connected layer with
    ReLU, dropout 0.7 and a linear classifier. The paper pools 5×5 with stride 3, which gives
    4×4 only from the 14×14 maps of a 224×224 input; torchvision pools adaptively to 4×4.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        conv_block: ConvBlock,
        pool: nn.Module,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (4, 4):
            raise GeometryError(
                f"GoogLeNet's auxiliary classifier needs 4x4 maps after pooling, got "
                f"{tuple(x.shape[-2:])}: feed 224x224 images, or build the model with "
                "aux_logits=False"
            )
        x = self.relu(self.fc1(torch.flatten(self.conv(x), 1)))
        return self.fc2(self.dropout(x))


class GoogLeNet(ImageClassifier):
    """GoogLeNet, configurable between the 2014 paper and torchvision's batch-norm variant.

    Attribute names follow torchvision (``conv1`` … ``inception5b``, ``aux1``, ``aux2``, ``fc``);
    the normalisation layers of the paper have no parameters, so both variants share one
    state-dict layout. In training mode with ``aux_logits`` the forward pass returns
    ``(logits, aux1, aux2)``; otherwise the logits alone.

    Args:
        num_classes: classifier outputs.
        in_chans: input image channels.
        conv_block: the convolution unit (:func:`conv_relu` or :class:`BasicConv2d`).
        local_response_norm: LRN after the first pool and after conv3, as in Figure 3.
        kernel_5x5: kernel of the Inception modules' "5×5" branch (torchvision: 3).
        pool4_kernel: kernel of the stride-2 max pool before inception 5a (paper 3, torchvision 2).
        aux_pool: the auxiliary classifiers' pooling layer (a factory, one per classifier).
        aux_logits: build the two auxiliary classifiers.
        dropout: dropout before the main classifier (paper 0.4).
        dropout_aux: dropout in the auxiliary classifiers (0.7).
        transform_input: re-normalise ImageNet-normalised inputs to [-1, 1] first, as Google's
            ported weights expect (torchvision's option of the same name).
    """

    classifier_layers = ("fc", "aux1.fc2", "aux2.fc2")

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        conv_block: ConvBlock = conv_relu,
        local_response_norm: bool = True,
        kernel_5x5: int = 5,
        pool4_kernel: int = 3,
        aux_pool: Callable[[], nn.Module] | None = None,
        aux_logits: bool = True,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
        transform_input: bool = False,
    ) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        def norm() -> nn.Module:
            if not local_response_norm:
                return nn.Identity()
            # Caffe's LRN as in the BVLC GoogLeNet: 5 channels, alpha 1e-4, beta 0.75.
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)

        self.conv1 = conv_block(in_chans, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = norm()
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.norm2 = norm()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = 192
        for name, (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) in INCEPTION_WIDTHS.items():
            module = InceptionModule(
                channels,
                ch1x1,
                ch3x3,
                ch5x5,
                ch3x3_reduce=ch3x3red,
                ch5x5_reduce=ch5x5red,
                pool_proj=pool_proj,
                conv_block=conv_block,
                kernel_5x5=kernel_5x5,
            )
            self.add_module(f"inception{name}", module)
            channels = module.out_channels
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "4e":
                self.maxpool4 = nn.MaxPool2d(pool4_kernel, stride=2, ceil_mode=True)

        if aux_logits:
            aux_pool = aux_pool or (lambda: nn.AvgPool2d(5, stride=3))
            self.aux1 = AuxClassifier(
                512, num_classes, conv_block=conv_block, pool=aux_pool(), dropout=dropout_aux
            )
            self.aux2 = AuxClassifier(
                528, num_classes, conv_block=conv_block, pool=aux_pool(), dropout=dropout_aux
            )
        else:
            self.aux1 = self.aux2 = None

        # Table 1's 7×7/1 average pool at 224×224; adaptive so smaller inputs also work.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        self.num_features = 1024

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        with_aux = self.training and self.aux1 is not None
        x, aux1, aux2 = self._trunk(x, with_aux)
        logits = self.forward_head(x)
        return (logits, aux1, aux2) if with_aux else logits

    def _trunk(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, ...]:
        """The last feature maps, and the auxiliary logits on 4a and 4d if ``with_aux``."""
        if self.transform_input:
            x = imagenet_to_inception_range(x)
        x = self.norm1(self.maxpool1(self.conv1(x)))
        x = self.maxpool2(self.norm2(self.conv3(self.conv2(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux1, aux2


def _init_paper_weights(model: nn.Module) -> None:
    """Glorot-uniform weights and 0.2 conv biases, as the BVLC Caffe reproduction initialises.

    The paper trained with DistBelief and names no initialisation; without batch norm a
    22-layer net needs a scale-aware one, and the positive bias keeps the ReLUs alive early on.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.constant_(module.bias, 0.2 if isinstance(module, nn.Conv2d) else 0.0)


def _init_torchvision_weights(model: nn.Module) -> None:
    """torchvision's ``init_weights=True``: truncated normal (std 0.01) for convs and linears."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)


@register_model(input_size=INPUT_SIZE, paper=PAPER, aux_loss_weight=AUX_LOSS_WEIGHT)
def googlenet_paper(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> GoogLeNet:
    """GoogLeNet as published: Szegedy et al. 2014, "Going deeper with convolutions", Table 1.

    No batch norm, LRN after the first two stages, 5×5 Inception branches, 40% dropout before
    the classifier and two auxiliary classifiers (on 4a and 4d) whose losses count
    ``model.aux_loss_weight`` = 0.3 each. Table 1 counts about 6.8M parameters without the
    auxiliary classifiers. ``kwargs`` go to :class:`GoogLeNet` (e.g. ``aux_logits=False``).
    """
    model = GoogLeNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
    _init_paper_weights(model)
    return model


@register_model(input_size=INPUT_SIZE, paper=PAPER, aux_loss_weight=AUX_LOSS_WEIGHT)
def googlenet(
    *, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True, **kwargs
) -> GoogLeNet:
    """torchvision's GoogLeNet: Szegedy et al. 2014, Table 1, with batch norm after every conv.

    State-dict compatible with ``torchvision.models.googlenet(weights=None, aux_logits=...)``,
    including its departures from the paper: a 3×3 kernel in the "5×5" branch, a 2×2 pool
    before inception 5a, adaptive 4×4 pooling in the auxiliary classifiers and dropout 0.2.
    ``aux_logits`` defaults to True as torchvision's does without weights; ``transform_input``
    (default False) re-normalises ImageNet-normalised inputs for Google's ported weights.
    """
    kwargs.setdefault("dropout", 0.2)
    model = GoogLeNet(
        num_classes=num_classes,
        in_chans=in_chans,
        conv_block=BasicConv2d,
        local_response_norm=False,
        kernel_5x5=3,
        pool4_kernel=2,
        aux_pool=lambda: nn.AdaptiveAvgPool2d(4),
        aux_logits=aux_logits,
        **kwargs,
    )
    _init_torchvision_weights(model)
    return model
