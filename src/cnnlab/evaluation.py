"""Evaluation: top-1/top-5 accuracy, test-time augmentation and ensembles of checkpoints.

The papers' test-time tricks, on top of ``torchvision.transforms.v2.functional``:

* ``flip``: average the softmax of the image and its mirror image.
* ``tencrop``: AlexNet's "ten 224x224 patches (the four corner patches and the center patch)
  as well as their horizontal reflections" from a larger image: the batch is enlarged by
  256/224 and cut into ten crops of the model's input size.
* ``multiscale``: VGG's multi-scale test: the image at several scales (0.875x, 1x, 1.125x
  here, standing for Q in {S-32, S, S+32}), which needs a network with global pooling.
* ``flipshift``: Jordan 2024's multi-crop test for small images: the image and its mirror
  (weight 1/2 together), and the image translated by one pixel up-left and down-right
  (reflect padding) with their mirrors (1/2 together).
* ``flipshift-adaptive``: ``flipshift`` where the shifted views can still change the answer:
  every image and its mirror, and the four shifted views only for images whose mirror pair
  leaves its two likeliest classes within ``ADAPTIVE_MARGIN`` of each other.
* several checkpoints: their softmax outputs are averaged (AlexNet's and GoogLeNet's 7-net
  ensembles).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from cnnlab.errors import CheckpointError, ConfigError, GeometryError, unknown_name
from cnnlab.machine import bf16_supported, resolve_device
from cnnlab.validate import POSITIVE_INT, Flag, Instance, Text, check

_CHECKPOINTS = Instance((list, tuple), "a path or a list of paths (or model names)")

TTA_MODES = ("none", "flip", "tencrop", "multiscale", "flipshift", "flipshift-adaptive")
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
    precision: str = "fp32"
    #: what the run (or the weights' provenance) tested in: ``bf16`` or ``fp32``
    recorded_precision: str = "fp32"

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
        tta: ``none``, ``flip``, ``tencrop``, ``multiscale``, ``flipshift`` or
            ``flipshift-adaptive``.
    """
    check_tta(tta)

    def probabilities(view: torch.Tensor) -> torch.Tensor:
        try:
            return F.softmax(model(view).float(), dim=1)
        except (RuntimeError, GeometryError) as error:
            shape = "x".join(map(str, view.shape[1:]))
            if tta == "multiscale":  # the only mode that changes the input size
                what = f"the {shape} inputs that --tta multiscale makes"
                hint = "multi-scale testing needs a network with global pooling; use --tta flip"
            else:
                what = f"{shape} inputs"
                hint = "evaluate it on data of the channels and size it was trained on (--data)"
            raise ConfigError(
                f"the model cannot take {what} ({str(error).splitlines()[0][:100]}); {hint}"
            ) from error

    if tta == "flipshift-adaptive":
        return adaptive_flipshift(probabilities, images)
    height, width = images.shape[-2:]
    weights = None  # equal unless the mode says otherwise
    if tta == "flipshift":
        views, weights = flipshift_views(images), FLIPSHIFT_WEIGHTS
    elif tta == "none":
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
    total: torch.Tensor | float = 0.0
    for view, weight in zip(views, weights or [1 / len(views)] * len(views), strict=True):
        total = total + weight * probabilities(view)
    return total


FLIPSHIFT_WEIGHTS = (1 / 4, 1 / 4, 1 / 8, 1 / 8, 1 / 8, 1 / 8)


def flipshift_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The six ``flipshift`` views: image, mirror, and the two 1-pixel translations (up-left,
    down-right, from the reflect-padded image) each with its mirror."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[..., :height, :width], padded[..., 2 : 2 + height, 2 : 2 + width]]
    return [view for image in (images, *shifted) for view in (image, TF.horizontal_flip(image))]


#: ``flipshift-adaptive`` adds the shifted views where the mirror pair's two likeliest classes
#: are closer than this in probability. With the shipped speedrun weights on CIFAR-10 that is
#: 17% of the test images, and the answers are those of ``flipshift`` for every image.
ADAPTIVE_MARGIN = 0.3


def adaptive_flipshift(
    probabilities: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor
) -> torch.Tensor:
    """``flipshift``'s average where the four shifted views could change the answer, the
    mirror pair's elsewhere: the shifted views weigh half of the six, so they rarely overturn
    a clear lead, and skipping them for confident images saves most of the test's work.

    Args:
        probabilities: the model's class probabilities of a batch of views.
        images: a normalised batch ``[N, C, H, W]``.
    """
    pair = 0.5 * (probabilities(images) + probabilities(TF.horizontal_flip(images)))
    leaders = pair.topk(min(2, pair.shape[1]), dim=1).values
    unsure = (leaders[:, 0] - leaders[:, -1] < ADAPTIVE_MARGIN).nonzero().squeeze(1)
    if len(unsure):
        shifted = torch.cat(flipshift_views(images[unsure])[2:])
        if images.is_contiguous(memory_format=torch.channels_last):
            shifted = shifted.contiguous(memory_format=torch.channels_last)
        views = probabilities(shifted).unflatten(0, (4, len(unsure)))
        weights = pair.new_tensor(FLIPSHIFT_WEIGHTS[2:]).view(4, 1, 1)
        pair[unsure] = 2 * FLIPSHIFT_WEIGHTS[0] * pair[unsure] + (weights * views).sum(0)
    return pair


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
    weights: str | None = None,
    weights_file: str | Path | None = None,
    amp: bool | None = None,
) -> EvaluationResult:
    """Top-1 and top-5 accuracy of one checkpoint, or of an ensemble of several.

    Args:
        checkpoints: checkpoint files, run directories or registered model names
            (MODEL_OR_CHECKPOINT); several are averaged (softmax mean).
        data: dataset name; default: the one the (first) checkpoint or weights were trained on.
        data_dir: where the dataset lives, as for ``cnnlab train --data-dir``.
        tta: test-time augmentation: ``none``, ``flip``, ``tencrop`` or ``multiscale``.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: test images per batch.
        use_ema: evaluate the checkpoints' EMA weights.
        weights, weights_file: for registered model names given in place of checkpoints, as in
            ``create_model`` (e.g. ``evaluate("resnet20", weights="cifar10")``).
        amp: evaluate in bf16 autocast (True) or float32 (False); ``None`` takes the precision
            the (first) run recorded for its own tests, so the result matches its metrics.csv
            (cnnlab's own weights: their run's, from the provenance; float32 for a model with
            other or no weights, or a run that recorded none). A recorded bf16 becomes float32
            on a device that only emulates bf16 (a CPU without AVX512-BF16 or AMX), where it
            runs many times slower; the result's ``recorded_precision`` then says so.
    """
    from cnnlab.data import load_dataset, make_loader
    from cnnlab.model_source import check_same_classes, load_source

    if isinstance(checkpoints, (str, Path)):
        checkpoints = [checkpoints]
    check("evaluate", "checkpoints", checkpoints, _CHECKPOINTS)
    if not checkpoints or not all(isinstance(c, str | Path) and str(c) for c in checkpoints):
        raise ConfigError(
            f"evaluate: checkpoints must be one or more checkpoint files, run directories or "
            f"model names, got {checkpoints!r}"
        )
    for name, value, domain in (
        ("data", data, Text(optional=True)),
        ("data_dir", data_dir, Instance((str, Path), "a path", optional=True)),
        ("tta", tta, Text()),
        ("device", device, Text()),
        ("batch_size", batch_size, POSITIVE_INT),
        ("use_ema", use_ema, Flag()),
        ("weights", weights, Text(optional=True)),
        ("weights_file", weights_file, Instance((str, Path), "a path", optional=True)),
    ):
        check("evaluate", name, value, domain)
    check_tta(tta)
    device = resolve_device(device)
    sources = [
        load_source(
            path, weights=weights, weights_file=weights_file, device=device, use_ema=use_ema
        )
        for path in checkpoints
    ]
    models = [source.model for source in sources]
    check_same_classes(sources, "an ensemble needs models of the same dataset")
    classes = {n for source in sources if (n := source.num_classes) is not None}
    trained_on = {source.label: source.data for source in sources if source.data is not None}
    if len(set(trained_on.values())) > 1:
        listed = ", ".join(f"{label} on {name}" for label, name in trained_on.items())
        raise CheckpointError(
            f"the checkpoints were trained on different datasets ({listed}); an ensemble "
            "needs models of the same dataset: evaluate them one at a time"
        )
    first = sources[0]
    data = data or first.data
    if data is None:
        raise ConfigError(f"{first.label} records no dataset; name one with --data")
    recorded = (first.checkpoint or {}).get("config") or {}
    dataset = load_dataset(
        data,
        data_dir=data_dir or first.data_dir,
        skip_bad_images=bool(recorded.get("skip_bad_images", False)),  # as the run read it
    )
    if first.checkpoint is None and first.run_config is not None:
        # cnnlab's own weights: normalised with the statistics their training set had, as
        # recorded in the provenance, so a partial copy of the dataset gives the same figures
        preprocessing = first.preprocessing
        dataset = replace(dataset, mean=preprocessing.mean, std=preprocessing.std)
    if classes and dataset.num_classes not in classes:
        raise ConfigError(
            f"{data} has {dataset.num_classes} classes but the checkpoints predict "
            f"{classes.pop()}; evaluate on the dataset they were trained on"
        )
    input_size = first.fed_size or dataset.input_size
    loader = make_loader(
        "test",
        dataset,
        batch_size=batch_size,
        train=False,
        device=device,
        augment="none",
        input_size=input_size,
    )
    recorded_precision = run_eval_precision({"config": first.run_config})
    if amp is None:
        amp = recorded_precision == "bf16" and bf16_supported(torch.device(device))
    totals = RunningTotals(device)
    for images, labels in loader.epoch(0):
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            probabilities = sum(tta_probabilities(model, images, tta) for model in models)
        totals.add(probabilities, labels)
    result = totals.read()
    return EvaluationResult(
        tuple(map(str, checkpoints)),
        data,
        tta,
        int(result.count),
        result.top1,
        result.top5,
        "bf16" if amp else "fp32",
        recorded_precision,
    )


def run_eval_precision(checkpoint: dict | None) -> str:
    """``bf16`` or ``fp32``: what a run recorded for its per-epoch tests (``eval_amp``, else
    its training ``amp``); ``fp32`` when it recorded neither or there is no run."""
    config = (checkpoint or {}).get("config") or {}
    recorded = config.get("eval_amp")
    if recorded is None:
        recorded = config.get("amp")
    return "bf16" if recorded is True else "fp32"


@dataclass(frozen=True)
class Prediction:
    """The most probable classes for one image.

    Attributes:
        image: the image file.
        top: ``(class index, class name, probability)``, most probable first.
    """

    image: str
    top: tuple[tuple[int, str, float], ...]


@torch.no_grad()
def predict(
    source: str | Path,
    images: Sequence[str | Path],
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    top: int = 5,
    tta: str = "none",
    device: str = "cpu",
) -> tuple[list[Prediction], str]:
    """Class names and probabilities for image files, prepared as the model's training data.

    Args:
        source: a checkpoint, a run directory or a registered model name (MODEL_OR_CHECKPOINT).
        images: image files (PNG, JPEG, ...).
        weights, weights_file: for a model name, as in ``create_model``.
        top: how many classes to report per image.
        tta: test-time augmentation, as for :func:`evaluate` (``tencrop``: the papers' ten
            crops).
        device: ``cpu`` or ``cuda``.

    Returns:
        ``(predictions, how)``: one :class:`Prediction` per image, and a line saying which
        model and which preprocessing were used.
    """
    from cnnlab.model_source import load_source, read_images

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    check_tta(tta)
    device = resolve_device(device)
    loaded = load_source(source, weights=weights, weights_file=weights_file, device=device)
    batch, _ = read_images(images, loaded.preprocessing)
    probabilities = tta_probabilities(loaded.model, batch.to(device), tta)
    values, indices = probabilities.topk(min(top, probabilities.shape[1]), dim=1)
    predictions = [
        Prediction(
            str(image),
            tuple(
                (int(i), loaded.class_name(int(i)), float(p))
                for p, i in zip(row_values, row_indices, strict=True)
            ),
        )
        for image, row_values, row_indices in zip(images, values, indices, strict=True)
    ]
    pre = loaded.preprocessing
    resize = (
        f"shorter side {pre.resize}, centre crop {pre.crop[0]}×{pre.crop[1]}"
        if isinstance(pre.resize, int)
        else f"resized to {pre.resize[0]}×{pre.resize[1]}"
        + ("" if tuple(pre.resize) == pre.crop else f", then {pre.crop[0]}×{pre.crop[1]}")
    )
    how = f"{loaded.label}; images {resize}, normalised with the mean and std of {pre.source}"
    return predictions, how
