"""What the "looking inside" pictures read: a model (checkpoint or name), an image, a few batches.

Every picture command starts the same way: rebuild the model a checkpoint was trained as (or
build a registered model with its initial weights), read an image the way the model was fed
during training (its input size, the training set's mean and std) and decide where the PNG
goes. Keeping that here means the pictures themselves only deal with tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageError(CnnlabError):
    """An image file that is missing or cannot be decoded."""


@dataclass
class LoadedModel:
    """A model ready for inspection, with where it came from.

    Attributes:
        model: the network, in eval mode.
        label: a short name for legends and titles (the run or model name).
        checkpoint: the checkpoint dict, or None for a freshly initialised registered model.
        path: the checkpoint file, or None.
    """

    model: nn.Module
    label: str
    checkpoint: dict[str, Any] | None
    path: Path | None

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(getattr(self.model, "default_input_size", (3, 224, 224)))


def load_model(
    source: str | Path, device: str | torch.device = "cpu", seed: int = 0
) -> LoadedModel:
    """A checkpoint file, a run directory, or a registered model name (initial weights).

    A name builds the model with ``torch.manual_seed(seed)`` so the same command draws the
    same initial weights, which is what a gradient-flow picture at initialisation needs.
    """
    from cnnlab.checkpoint import model_from_checkpoint
    from cnnlab.models import create_model

    path = Path(source)
    if path.exists():
        model, checkpoint = model_from_checkpoint(path, device=device)
        if path.is_dir():
            path = path / "checkpoint.pt"
        where = f"{path.parent.name}/{path.name}"
        label = f"{checkpoint['model_name']} ({where}, epoch {checkpoint['epoch']})"
        return LoadedModel(model, label, checkpoint, path)
    if path.suffix in (".pt", ".pth") or "/" in str(source):
        raise CnnlabError(f"no checkpoint at {source}; pass a .pt file, a run directory or a model")
    torch.manual_seed(seed)
    model = create_model(str(source)).to(device).eval()
    return LoadedModel(model, f"{source} (initial weights)", None, None)


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


def normalisation(checkpoint: dict[str, Any] | None) -> Normalisation:
    """The mean and std a model was trained with, and where they came from.

    Looked up in this order: ``mean``/``std`` stored in the checkpoint or its config; the
    training set named in the config (loaded offline, without downloading); ImageNet's.
    """
    if checkpoint is not None:
        config = checkpoint.get("config") or {}
        for holder in (checkpoint, config):
            if holder.get("mean") is not None and holder.get("std") is not None:
                return Normalisation(tuple(holder["mean"]), tuple(holder["std"]), "the checkpoint")
        if config.get("data"):
            from cnnlab.data import load_dataset

            try:
                data = load_dataset(config["data"], data_dir=config.get("data_dir"), download=False)
            except CnnlabError:
                pass
            else:
                return Normalisation(
                    tuple(data.mean), tuple(data.std), f"the {data.name} training set", data.classes
                )
    return Normalisation(IMAGENET_MEAN, IMAGENET_STD, "ImageNet")


def read_image(path: str | Path, channels: int) -> torch.Tensor:
    """An image file as float32 ``[C, H, W]`` in [0, 1], grey (C=1) or RGB (C=3)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no image at {path}; pass a PNG or JPEG file")
    try:
        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(f"cannot decode {path} as an image ({error}); use PNG or JPEG") from error
    image = torch.from_numpy(pixels.copy())
    image = image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1)
    return image.float() / 255.0


def model_input(
    path: str | Path, input_size: tuple[int, int, int], stats: Normalisation
) -> tuple[torch.Tensor, torch.Tensor]:
    """The image as the model sees it, and as a person sees it.

    Returns:
        ``(batch, display)``: ``batch`` is ``[1, C, H, W]`` resized to ``input_size`` and
        normalised per channel; ``display`` is the resized image in [0, 1], ``[C, H, W]``.
    """
    from torchvision.transforms.v2.functional import resize

    channels, height, width = input_size
    image = resize(read_image(path, channels), [height, width], antialias=True).clamp(0, 1)
    mean_t, std_t = _per_channel(stats.mean, channels), _per_channel(stats.std, channels)
    batch = ((image - mean_t.view(-1, 1, 1)) / std_t.view(-1, 1, 1)).unsqueeze(0)
    return batch, image


def _per_channel(values: tuple[float, ...], channels: int) -> torch.Tensor:
    """Statistics for ``channels`` channels: RGB statistics are averaged for a grey model."""
    tensor = torch.tensor(values, dtype=torch.float32)
    if tensor.numel() == channels:
        return tensor
    if channels == 1:
        return tensor.mean().view(1)
    return tensor.mean().repeat(channels)


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


def save_figure(figure, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib ``Figure`` as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
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
    from cnnlab.data import load_dataset, make_loader

    if count < 1 or batch_size < 1:
        raise CnnlabError(f"need at least one batch of one image, got {count} × {batch_size}")
    dataset = load_dataset(data, data_dir=data_dir, download=False)
    loader = make_loader(
        "train",
        dataset,
        batch_size=batch_size,
        train=True,
        device=device,
        augment="none",
        seed=seed,
        drop_last=False,
        input_size=input_size,
    )
    batches = []
    for images, labels in loader.epoch(0):
        batches.append((images.float(), labels))
        if len(batches) == count:
            break
    return batches, dataset.name
