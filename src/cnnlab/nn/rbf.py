"""Euclidean radial-basis-function output units and their loss (LeCun et al. 1998, Section II-B).

LeNet-5 does not end in a linear layer: each output unit i measures the squared Euclidean
distance ``y_i = sum_j (x_j - w_ij)^2`` between the F6 vector and a fixed code ``w_i`` (a
stylised bitmap of the class). The smallest distance wins, so cnnlab returns ``-y_i`` as the
logits: ``argmax`` is the prediction and top-k accuracy works unchanged. torch has no such
layer, hence this module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError


class EuclideanRBF(nn.Module):
    """Output units ``-||x - w_i||^2`` against fixed centres ``w_i`` (one per class).

    The centres are a buffer, not a parameter: the paper keeps them fixed (at ±1) so the
    network cannot collapse all codes onto one point, and they do not count as trainable.

    Args:
        centers: ``(num_classes, in_features)`` tensor of codes.
    """

    centers: torch.Tensor

    def __init__(self, centers: torch.Tensor) -> None:
        super().__init__()
        if centers.dim() != 2:
            raise ConfigError(
                f"RBF centres must be a (num_classes, in_features) matrix, got shape "
                f"{tuple(centers.shape)}; pass one code per row."
            )
        self.register_buffer("centers", centers.float())

    @property
    def in_features(self) -> int:
        return self.centers.shape[1]

    @property
    def out_features(self) -> int:
        return self.centers.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written as a broadcast difference rather than |x|^2 - 2x.w + |w|^2: exact (no
        # cancellation) and cheap at LeNet's size (B x classes x 84).
        return -(x.unsqueeze(1) - self.centers).pow(2).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fixed centres"

    def summary_note(self) -> str:
        return "-||x - w_i||^2 against fixed codes"


def random_codes(num_classes: int, code_size: int, seed: int = 0) -> torch.Tensor:
    """``num_classes`` random ±1 codes of length ``code_size``, reproducible from ``seed``.

    Used where a task has no stylised class bitmaps (the paper's codes exist only for its
    character set). Drawn with numpy so the result does not depend on torch's global RNG
    or on the default device.
    """
    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(num_classes, code_size))
    return torch.as_tensor(codes)


def rbf_mse_loss(
    logits: torch.Tensor, target: torch.Tensor, *, discriminative_j: float | None = None
) -> torch.Tensor:
    """The paper's loss for RBF outputs; ``logits`` are the negative squared distances.

    Without ``discriminative_j`` this is eq. (8), the mean squared distance between the F6
    vector and the code of the correct class: ``E = mean_p y_{D_p}``.

    With ``discriminative_j = j`` (a positive constant) it is eq. (9), which also pushes the
    wrong classes' distances up, so the codes cannot all be matched at once:
    ``E = mean_p ( y_{D_p} + log(exp(-j) + sum_i exp(-y_i)) )``. The ``exp(-j)`` term keeps
    the penalty from pushing distances that are already large.

    Args:
        logits: ``(B, num_classes)`` negative squared distances from :class:`EuclideanRBF`.
        target: ``(B,)`` class indices.
        discriminative_j: the constant j of eq. (9); ``None`` for plain eq. (8).

    Returns:
        The scalar loss.
    """
    correct_distance = -logits.gather(1, target.view(-1, 1)).squeeze(1)
    if discriminative_j is None:
        return correct_distance.mean()
    if discriminative_j <= 0:
        raise ConfigError(
            f"discriminative_j must be a positive constant (eq. 9), got {discriminative_j}."
        )
    floor = logits.new_full((logits.shape[0], 1), -float(discriminative_j))
    competition = torch.logsumexp(torch.cat([floor, logits], dim=1), dim=1)
    return (correct_distance + competition).mean()
