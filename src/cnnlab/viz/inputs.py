"""What the "looking inside" pictures read: a model (checkpoint or name), an image, a few batches.

Every picture command starts the same way: rebuild the model a checkpoint was trained as (or
build a registered model with its initial weights), read an image the way the model was fed
during training (its input size, the training set's mean and std) and decide where the PNG
goes. Keeping that here means the pictures themselves only deal with tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.errors import CnnlabError
from cnnlab.model_source import (
    ModelSource,
    load_source,
    prepare_image,
)
from cnnlab.model_source import read_image as read_image_bytes
from cnnlab.outputs import FIGURE_SUFFIXES, check_output

#: A model with where it came from and how to feed it (MODEL_OR_CHECKPOINT).
LoadedModel = ModelSource


def load_model(
    source: str | Path,
    device: str | torch.device = "cpu",
    seed: int = 0,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
) -> LoadedModel:
    """A checkpoint file, a run directory, or a registered model name (see ``load_source``).

    A name without weights builds the model with ``torch.manual_seed(seed)`` so the same command
    draws the same initial weights, which is what a gradient-flow picture at initialisation
    needs; ``weights``/``weights_file`` load pretrained ones instead.
    """
    return load_source(source, weights=weights, weights_file=weights_file, device=device, seed=seed)


@dataclass
class Normalisation:
    """How a model's inputs were scaled in training, and the class names when known."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    classes: list[str] | None = None

    def class_name(self, index: int) -> str:
        if (
            self.classes is not None
            and index < len(self.classes)
            and self.classes[index] != str(index)
        ):
            return f"{index} ({self.classes[index]})"
        return str(index)


def read_image(path: str | Path, channels: int) -> torch.Tensor:
    """An image file as float32 ``[C, H, W]`` in [0, 1], grey (C=1) or RGB (C=3)."""
    return read_image_bytes(path, channels).float() / 255.0


def image_input(
    path: str | Path, loaded: LoadedModel
) -> tuple[torch.Tensor, torch.Tensor, Normalisation]:
    """The image as the model sees it, as a person sees it, and how it was normalised.

    Prepared as the model's training data was (``loaded.preprocessing``: a run's dataset, or
    the weights' own transforms).

    Returns:
        ``(batch, display, stats)``: ``batch`` is ``[1, C, H, W]``; ``display`` is the resized
        image in [0, 1], ``[C, H, W]``.
    """
    pre = loaded.preprocessing
    batch, display = prepare_image(read_image_bytes(path, pre.channels), pre)
    categories = list(loaded.categories) if loaded.categories else None
    return batch.unsqueeze(0), display, Normalisation(pre.mean, pre.std, pre.source, categories)


def default_output(source: str | Path | None, suffix: str) -> Path:
    """Next to the checkpoint (``best_filters.png``), else in the current directory."""
    if source is not None:
        path = Path(source)
        if path.is_dir():
            return path / f"{suffix}.png"
        if path.is_file():
            return path.with_name(f"{path.stem}_{suffix}.png")
        return Path(f"{path.name}_{suffix}.png")
    return Path(f"{suffix}.png")


def save_figure(
    figure, path: str | Path, dpi: int = 100, inputs: Iterable[str | Path] = ()
) -> Path:
    """Write a matplotlib ``Figure`` in the format its extension names, creating the folder.

    Atomically (the training curves are rewritten every epoch while others may read them), and
    only where ``check_output`` allows: not over ``inputs`` or a run's own files.
    """
    path = check_output(path, FIGURE_SUFFIXES, "a picture", inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    figure.savefig(tmp, dpi=dpi)
    tmp.replace(path)
    return path


def fixed_batches(
    data: str,
    count: int,
    batch_size: int,
    input_size: tuple[int, int, int],
    *,
    data_dir: str | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], str]:
    """``count`` training batches drawn once (shuffled by ``seed``, not augmented), on ``device``.

    A landscape or a gradient-flow picture evaluates the same images again and again, so they
    are loaded once and kept. Shuffling matters: class-ordered folders would otherwise give
    batches of one class.

    Returns:
        ``(batches, dataset name)``.
    """
    from cnnlab.data import load_dataset

    if count < 1 or batch_size < 1:
        raise CnnlabError(f"need at least one batch of one image, got {count} × {batch_size}")
    dataset = load_dataset(data, data_dir=data_dir, download=False)
    loader = training_loader(
        dataset, batch_size, input_size, device=device, seed=seed, augment="none", drop_last=False
    )
    batches = []
    for images, labels in loader.epoch(0):
        batches.append((images.float(), labels))
        if len(batches) == count:
            break
    return batches, dataset.name


def training_loader(dataset, batch_size: int, input_size: tuple[int, ...], **options):
    """A shuffled loader of ``dataset``'s training split at the model's ``input_size``: what
    the pictures that look at training batches (landscape, gradient flow, lr-find) read.
    ``options`` go to ``make_loader`` (``device``, ``seed``, ``augment``, ``drop_last``)."""
    from cnnlab.data import make_loader

    return make_loader(
        "train", dataset, batch_size=batch_size, train=True, input_size=input_size, **options
    )
