"""Inception v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision").

Inception v3 refines GoogLeNet's module with the paper's factorisation principles: a 5×5
convolution becomes two 3×3 ones (Figure 5), an n×n one becomes 1×n then n×1 (Figure 6), the
coarsest grid widens its 3×3 branches into parallel 1×3 and 3×1 convolutions (Figure 7), and
the grid shrinks by running stride-2 convolutions beside a stride-2 pool (Figure 10) instead of
pooling alone. Batch norm follows every convolution and one auxiliary classifier regularises
training. The layout and key names are torchvision's, which follow Google's released model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import GeometryError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.inception import BasicConv2d, imagenet_to_inception_range

PAPER = "Szegedy et al. 2016"

AUX_LOSS_WEIGHT = 0.4
"""Auxiliary loss weight of the TF-slim training recipe; the paper states none."""


def _concat(*branches: torch.Tensor) -> torch.Tensor:
    return torch.cat(branches, dim=1)


def _row_and_column(n: int) -> tuple[dict, dict]:
    """Keyword arguments of a 1×n and an n×1 convolution that keep the grid (Figure 6)."""
    row = {"kernel_size": (1, n), "padding": (0, n // 2)}
    column = {"kernel_size": (n, 1), "padding": (n // 2, 0)}
    return row, column


def _pool_same(x: torch.Tensor) -> torch.Tensor:
    """3×3 average pool with stride 1, which keeps the grid: the pooling branch of Figures 5–7."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35×35 module (Figure 5): 1×1, 5×5, double 3×3 and pooling branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _concat(
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_pool_same(x)),
        )


class InceptionB(nn.Module):
    """Grid reduction 35×35 → 17×17 (Figure 10): stride-2 convolutions beside a stride-2 pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _concat(
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        )


class InceptionC(nn.Module):
    """17×17 module (Figure 6): 7×7 convolutions factorised into 1×7 and 7×1."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        row, col = _row_and_column(7)
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        return _concat(self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_pool_same(x)))


class InceptionD(nn.Module):
    """Grid reduction 17×17 → 8×8 (Figure 10 with factorised 7×7 branch)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        row, col = _row_and_column(7)
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, **row)
        self.branch7x7x3_3 = BasicConv2d(192, 192, **col)
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7x3 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(branch7x7x3))
        return _concat(
            self.branch3x3_2(self.branch3x3_1(x)),
            branch7x7x3,
            F.max_pool2d(x, kernel_size=3, stride=2),
        )


class InceptionE(nn.Module):
    """8×8 module (Figure 7): 3×3 branches widened into parallel 1×3 and 3×1 convolutions.

    The paper expands the filter bank on the coarsest grid to keep high-dimensional
    representations, where the cost of each spatial position is small.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        row, col = _row_and_column(3)
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, **row)
        self.branch3x3_2b = BasicConv2d(384, 384, **col)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, **row)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, **col)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return _concat(
            self.branch1x1(x),
            self.branch3x3_2a(branch3x3),
            self.branch3x3_2b(branch3x3),
            self.branch3x3dbl_3a(branch3x3dbl),
            self.branch3x3dbl_3b(branch3x3dbl),
            self.branch_pool(_pool_same(x)),
        )


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17×17×768 grid (Figure 8), with batch norm in its convs.

    The paper found it acts as a regulariser rather than helping early training.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
        self.conv1 = BasicConv2d(128, 768, kernel_size=5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 17:
            raise GeometryError(
                f"Inception v3's auxiliary classifier needs the 17x17 grid of an input of at least "
                f"299x299, got a {x.shape[-2]}x{x.shape[-1]} grid: feed larger images, or build "
                "the model with aux_logits=False"
            )
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InceptionV3(ImageClassifier):
    """Inception v3 with torchvision's module names, so its state dict loads unchanged.

    In training mode with ``aux_logits`` the forward pass returns ``(logits, aux)``; otherwise
    the logits alone.

    Args:
        num_classes: classifier outputs.
        in_chans: input image channels.
        aux_logits: build the auxiliary classifier on Mixed_6e.
        transform_input: re-normalise ImageNet-normalised inputs to [-1, 1] first, as Google's
            ported weights expect (torchvision's option of the same name).
        dropout: dropout before the classifier.
    """

    classifier_layers = ("fc", "AuxLogits.fc")

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        # The stem of Table 1: 299×299×3 → 35×35×192.
        self.Conv2d_1a_3x3 = BasicConv2d(in_chans, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        self.num_features = 2048
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's ``init_weights=True``: truncated normal, std 0.1 (aux: 0.01, fc 0.001)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.1, a=-2, b=2)
        if self.AuxLogits is not None:
            nn.init.trunc_normal_(self.AuxLogits.conv1.conv.weight, std=0.01, a=-2, b=2)
            nn.init.trunc_normal_(self.AuxLogits.fc.weight, std=0.001, a=-2, b=2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.dropout(self.avgpool(x)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        with_aux = self.training and self.AuxLogits is not None
        x, aux = self._trunk(x, with_aux)
        logits = self.forward_head(x)
        return (logits, aux) if aux is not None else logits

    def _trunk(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The last feature maps, and the auxiliary logits on Mixed_6e if ``with_aux``."""
        if self.transform_input:
            x = imagenet_to_inception_range(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x))))
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e"):
            x = getattr(self, f"Mixed_{name}")(x)
        aux = self.AuxLogits(x) if with_aux else None
        return self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x))), aux


@register_model(input_size=(3, 299, 299), paper=PAPER, aux_loss_weight=AUX_LOSS_WEIGHT)
def inception_v3(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> InceptionV3:
    """Inception v3: Szegedy et al. 2016, Table 1 (299×299 input, 27.2M parameters with aux).

    Built as torchvision's ``inception_v3(weights=None, aux_logits=True, init_weights=True)``,
    whose layout follows Google's released model (e.g. a 5×5 branch in the 35×35 modules) rather
    than every width of Table 1, so that its weights load unchanged. The smallest input is
    75×75 in eval mode; in training mode the auxiliary classifier needs at least 299×299.
    ``model.aux_loss_weight`` is 0.4. ``kwargs`` go to :class:`InceptionV3`.
    """
    return InceptionV3(num_classes=num_classes, in_chans=in_chans, **kwargs)
