"""The lectures' classification losses by name, on top of ``torch.nn``'s.

The regression-style losses (MSE, MAE, Huber) treat the network's scores as a prediction of
the one-hot target vector (optionally label-smoothed), as the lectures introduce them; the
hinge loss is the multi-class SVM loss; ``lenet_rbf`` is LeNet-5's loss on its RBF outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError, unknown_name

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES = ("cross_entropy", "hinge", "huber", "kl", "mae", "mse", "lenet_rbf")
_ALIASES = {"ce": "cross_entropy", "crossentropy": "cross_entropy", "svm": "hinge", "l1": "mae"}


class _OneHotLoss(nn.Module):
    """Apply a regression loss between scores and (smoothed) one-hot targets."""

    def __init__(self, loss: nn.Module, label_smoothing: float, on_log_probs: bool = False):
        super().__init__()
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.on_log_probs = on_log_probs

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        classes = scores.shape[1]
        one_hot = F.one_hot(target, classes).to(scores.dtype)
        smoothed = one_hot * (1 - self.label_smoothing) + self.label_smoothing / classes
        if self.on_log_probs:
            scores = F.log_softmax(scores.float(), dim=1)
            smoothed = smoothed.float()
        return self.loss(scores, smoothed)


def create_loss(name: str, *, label_smoothing: float = 0.0) -> LossFn:
    """The loss called ``name`` as ``fn(scores [N, C], target [N]) -> scalar``.

    Names: cross_entropy, hinge (multi-class SVM, ``nn.MultiMarginLoss``), huber, kl
    (Kullback-Leibler to the smoothed one-hot distribution), mae, mse, lenet_rbf.
    """
    key = _ALIASES.get(name.strip().lower().replace("-", "_"), name.strip().lower())
    if key not in LOSSES:
        raise unknown_name("loss", name, LOSSES, f"choose one of {', '.join(LOSSES)}")
    if label_smoothing and key in ("hinge", "lenet_rbf"):
        raise ConfigError(f"label smoothing does not apply to the {key} loss; drop it")
    if key == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if key == "hinge":
        return nn.MultiMarginLoss()
    if key == "lenet_rbf":
        from cnnlab.nn.rbf import rbf_mse_loss

        return rbf_mse_loss
    regression = {
        "huber": nn.HuberLoss(),
        "mae": nn.L1Loss(),
        "mse": nn.MSELoss(),
        "kl": nn.KLDivLoss(reduction="batchmean"),
    }
    return _OneHotLoss(regression[key], label_smoothing, on_log_probs=key == "kl")
