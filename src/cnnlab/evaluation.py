"""Evaluation: top-1/top-5 accuracy, test-time augmentation and ensembles of checkpoints.

The papers' test-time tricks, on top of ``torchvision.transforms.v2.functional``:

* ``flip``: average the softmax of the image and its mirror image.
* ``tencrop``: AlexNet's "ten 224x224 patches (the four corner patches and the center patch)
  as well as their horizontal reflections" from a larger image: the batch is enlarged by
  256/224 and cut into ten crops of the model's input size.
* ``multiscale``: VGG's multi-scale test: the image at several scales (0.875x, 1x, 1.125x
  here, standing for Q in {S-32, S, S+32}), which needs a network with global pooling.
* several checkpoints: their softmax outputs are averaged (AlexNet's and GoogLeNet's 7-net
  ensembles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from cnnlab.errors import CheckpointError, ConfigError, GeometryError, unknown_name

TTA_MODES = ("none", "flip", "tencrop", "multiscale")
MULTISCALE_FACTORS = (0.875, 1.0, 1.125)
TENCROP_ENLARGE = 256 / 224


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]) -> torch.Tensor:
    """How many rows have the target among their k highest scores, for each k (on device).

    k larger than the number of classes counts every row (top-5 of a 3-class problem is 100%).
    """
    kmax = min(max(ks), logits.shape[1])
    hits = logits.topk(kmax, dim=1).indices.eq(target.unsqueeze(1))
    cumulative = hits.cumsum(dim=1).sum(dim=0)  # [kmax]: rows with the target in the top j+1
    return torch.stack([cumulative[min(k, kmax) - 1] for k in ks])


class Totals(NamedTuple):
    """Means read from :class:`RunningTotals`: loss, top-1 and top-5 accuracy (%), images."""

    loss: float
    top1: float
    top5: float
    count: float


class RunningTotals:
    """Loss sum, top-1 hits, top-5 hits and image count, summed on the device.

    The four live in one float64 tensor (``sums``) so that adding a batch never waits for the
    host, and reading them, saving them in a checkpoint or summing them over processes is one
    operation.
    """

    def __init__(self, device: torch.device | str, saved: torch.Tensor | None = None):
        self.sums = torch.zeros(4, device=device, dtype=torch.float64)
        if saved is not None:
            self.sums += saved.to(device)

    @torch.no_grad()
    def add(
        self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor | None = None
    ) -> None:
        """Count one batch; ``loss`` is its mean loss (left out: the loss sum stays 0)."""
        count = labels.new_tensor(labels.shape[0], dtype=torch.float64)
        correct = topk_correct(logits.float(), labels, (1, 5)).double()
        loss_sum = count.new_zeros(1) if loss is None else (loss.double() * count).reshape(1)
        self.sums += torch.cat([loss_sum, correct, count.reshape(1)])

    def mean_loss(self) -> float:
        """The mean loss so far (one host synchronisation)."""
        return (self.sums[0] / self.sums[3].clamp(min=1)).item()

    def read(self) -> Totals:
        """Mean loss, top-1 and top-5 accuracy in percent, and the image count."""
        loss_sum, top1, top5, count = self.sums.tolist()
        per = max(count, 1.0)
        return Totals(loss_sum / per, 100 * top1 / per, 100 * top5 / per, count)


@dataclass(frozen=True)
class EvaluationResult:
    """Accuracy of a model or ensemble on one dataset split (percentages)."""

    checkpoints: tuple[str, ...]
    data: str
    tta: str
    images: int
    top1: float
    top5: float

    @property
    def top1_error(self) -> float:
        return 100.0 - self.top1

    @property
    def top5_error(self) -> float:
        return 100.0 - self.top5


def check_tta(tta: str) -> None:
    """Refuse an unknown test-time augmentation, naming the nearest one."""
    if tta not in TTA_MODES:
        raise unknown_name("--tta mode", tta, TTA_MODES, f"choose one of {', '.join(TTA_MODES)}")


def tta_probabilities(model: nn.Module, images: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Class probabilities of ``model`` on ``images`` averaged over the ``tta`` views.

    Args:
        model: a classifier in eval mode.
        images: a normalised batch ``[N, C, H, W]`` at the model's input size.
        tta: ``none``, ``flip``, ``tencrop`` or ``multiscale``.
    """
    check_tta(tta)
    height, width = images.shape[-2:]
    if tta == "none":
        views = [images]
    elif tta == "flip":
        views = [images, TF.horizontal_flip(images)]
    elif tta == "tencrop":
        large = [round(height * TENCROP_ENLARGE), round(width * TENCROP_ENLARGE)]
        views = list(TF.ten_crop(TF.resize(images, large, antialias=True), [height, width]))
    else:
        views = [
            TF.resize(images, [round(height * f), round(width * f)], antialias=True)
            for f in MULTISCALE_FACTORS
        ]
    total = None
    for view in views:
        try:
            probabilities = F.softmax(model(view).float(), dim=1)
        except (RuntimeError, GeometryError) as error:
            raise ConfigError(
                f"the model cannot take {tuple(view.shape[1:])} inputs that --tta {tta} makes "
                f"({str(error).splitlines()[0][:100]}); multi-scale testing needs a network "
                "with global pooling, use --tta flip or tencrop"
            ) from error
        total = probabilities if total is None else total + probabilities
    return total / len(views)


@torch.no_grad()
def evaluate(
    checkpoints: str | Path | Sequence[str | Path],
    *,
    data: str | None = None,
    data_dir: str | None = None,
    tta: str = "none",
    device: str = "auto",
    batch_size: int = 256,
    use_ema: bool = False,
) -> EvaluationResult:
    """Top-1 and top-5 accuracy of one checkpoint, or of an ensemble of several.

    Args:
        checkpoints: checkpoint files or run directories; several are averaged (softmax mean).
        data: dataset name; default: the one the (first) checkpoint was trained on.
        data_dir: where the dataset lives, as for ``cnnlab train --data-dir``.
        tta: test-time augmentation: ``none``, ``flip``, ``tencrop`` or ``multiscale``.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: test images per batch.
        use_ema: evaluate the checkpoints' EMA weights.
    """
    from cnnlab.checkpoint import model_from_checkpoint
    from cnnlab.data import load_dataset, make_loader

    if isinstance(checkpoints, (str, Path)):
        checkpoints = [checkpoints]
    if not checkpoints:
        raise ConfigError("give at least one checkpoint to evaluate")
    check_tta(tta)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = [model_from_checkpoint(path, device, use_ema=use_ema) for path in checkpoints]
    models = [model for model, _ in loaded]
    states = [state for _, state in loaded]
    classes = {state["model_kwargs"].get("num_classes") for state in states}
    if len(classes) > 1:
        raise CheckpointError(
            f"the checkpoints predict different numbers of classes ({sorted(classes)}); "
            "an ensemble needs models of the same dataset"
        )
    first_config = states[0]["config"]
    data = data or first_config["data"]
    dataset = load_dataset(data, data_dir=data_dir or first_config.get("data_dir"))
    if dataset.num_classes not in classes:
        raise ConfigError(
            f"{data} has {dataset.num_classes} classes but the checkpoints predict "
            f"{classes.pop()}; evaluate on the dataset they were trained on"
        )
    input_size = first_config.get("input_size") or dataset.input_size
    loader = make_loader(
        "test",
        dataset,
        batch_size=batch_size,
        train=False,
        device=device,
        augment="none",
        input_size=input_size,
    )
    totals = RunningTotals(device)
    for images, labels in loader.epoch(0):
        totals.add(sum(tta_probabilities(model, images, tta) for model in models), labels)
    result = totals.read()
    return EvaluationResult(
        tuple(map(str, checkpoints)), data, tta, int(result.count), result.top1, result.top5
    )
