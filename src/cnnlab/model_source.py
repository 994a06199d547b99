"""MODEL_OR_CHECKPOINT, as ``evaluate``, ``predict``, ``filters``, ``features`` take it.

An existing path is a cnnlab checkpoint or a run directory; anything else is a registered model
name, built with named weights (``--weights IMAGENET1K_V1``, ``cifar10``), a weights file
(``--weights-file``) or its initial weights. Whichever it is, the result says how an image
must be prepared to look like the model's training data: a run's dataset (its stored size,
mean and std), or the weights' own preprocessing (ImageNet weights: resize 256, centre crop
224, ImageNet mean and std). Keeping this in one place means every command feeds a user's
photo to a model the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.transforms import functional as TF  # the functions torchvision's presets use

from cnnlab.errors import CheckpointError, CnnlabError, ConfigError
from cnnlab.models.weights import Preprocessing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageError(CnnlabError):
    """An image file that is missing or cannot be decoded."""


@dataclass
class ModelSource:
    """A model ready for use, with where it came from and how to feed it.

    Attributes:
        model: the network, in eval mode.
        label: a short name for titles and messages.
        checkpoint: the checkpoint dict when the source was a checkpoint, else None.
        path: the checkpoint file, or None.
        preprocessing: how an image becomes the model's input.
        categories: class names in output order, when known.
        data: the dataset the model was trained on, when known (the run's, or the weights').
        data_dir: where that dataset was read from, for a run.
        run_config: the training config of a run, or of the run cnnlab's own weights came
            from (their provenance), when known.
    """

    model: nn.Module
    label: str
    checkpoint: dict[str, Any] | None
    path: Path | None
    preprocessing: Preprocessing
    categories: tuple[str, ...] | None = None
    data: str | None = None
    data_dir: str | None = None
    run_config: dict[str, Any] | None = None

    @property
    def input_size(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of what the model is fed."""
        return (self.preprocessing.channels, *self.preprocessing.crop)

    @property
    def num_classes(self) -> int | None:
        """Outputs of the classifier when known (a run's ``num_classes``, the weights' classes)."""
        if self.checkpoint is not None:
            return self.checkpoint["model_kwargs"].get("num_classes")
        return len(self.categories) if self.categories else None

    @property
    def fed_size(self) -> tuple[int, int, int] | None:
        """The input size a run recorded (None: its dataset's), or a named model's input size."""
        if self.checkpoint is not None:
            recorded = (self.checkpoint.get("config") or {}).get("input_size")
            return tuple(recorded) if recorded else None
        return self.input_size

    def class_name(self, index: int) -> str:
        """The class name of output ``index``, or the index as text when unknown."""
        if self.categories is not None and index < len(self.categories):
            return self.categories[index]
        return str(index)


def check_same_classes(sources: Sequence[ModelSource], advice: str) -> None:
    """Refuse models that predict different numbers of classes (one dataset's labels cannot
    fit them all): a ``CheckpointError`` naming each, ending with ``advice``."""
    counted = [s for s in sources if s.num_classes is not None]
    if len({s.num_classes for s in counted}) > 1:
        listed = ", ".join(sorted(f"{s.label}: {s.num_classes}" for s in counted))
        raise CheckpointError(
            f"the models predict different numbers of classes ({listed}); {advice}"
        )


def load_source(
    source: str | Path,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    device: str | torch.device = "cpu",
    use_ema: bool = False,
    seed: int = 0,
) -> ModelSource:
    """A checkpoint file, a run directory, or a registered model name.

    Args:
        source: an existing path (checkpoint or run directory) or a registered model name.
        weights: for a model name: named weights (``IMAGENET1K_V1``, ``DEFAULT``, ``cifar10``).
        weights_file: for a model name: a local state dict, checkpoint or safetensors file.
        device: where to put the model.
        use_ema: for a checkpoint: its EMA weights.
        seed: for a model name without weights: seeds the initial weights, so the same command
            draws the same ones.

    Raises:
        CnnlabError: a path that does not exist, weights given with a checkpoint, or anything
            the weights resolver refuses.
    """
    from cnnlab.validate import SEED, check

    check("load_source", "seed", seed, SEED)
    path = Path(source)
    if path.exists():
        if weights is not None or weights_file is not None:
            raise ConfigError(
                f"{source} is a checkpoint, which carries its own weights; --weights and "
                "--weights-file go with a model name"
            )
        return _from_checkpoint(path, device, use_ema)
    if path.suffix in (".pt", ".pth", ".safetensors") or "/" in str(source):
        raise CnnlabError(f"no checkpoint at {source}; pass a .pt file, a run directory or a model")
    from cnnlab.models import create_model

    torch.manual_seed(seed)
    model = create_model(str(source), weights=weights, weights_file=weights_file)
    model = model.to(device).eval()
    info = getattr(model, "weights_info", None)
    channels, height, width = _input_size(model)
    preprocessing = (info.preprocessing if info else None) or Preprocessing(
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop=(height, width),
        resize=(height, width),
        channels=channels,
        source="ImageNet (no training data known for these weights)",
    )
    if info is None:
        label = f"{source} (initial weights)"
    elif info.name is None:
        label = f"{source} ({Path(info.file).name})"
    else:
        label = f"{source} ({info.name} weights)"
    data = (info.provenance.get("data") or {}).get("name") if info else None
    categories = info.categories if info else None
    run_config = info.provenance.get("config") if info else None
    return ModelSource(
        model, label, None, None, preprocessing, categories, data, run_config=run_config
    )


def _from_checkpoint(path: Path, device, use_ema: bool) -> ModelSource:
    from cnnlab.checkpoint import model_from_checkpoint

    model, checkpoint = model_from_checkpoint(path, device, use_ema=use_ema)
    if path.is_dir():
        path = path / "checkpoint.pt"
    where = f"{path.parent.name}/{path.name}"
    label = f"{checkpoint['model_name']} ({where}, epoch {checkpoint['epoch']})"
    config = checkpoint.get("config") or {}
    channels, height, width = config.get("input_size") or _input_size(model)
    preprocessing, classes = _training_preprocessing(config, channels, (height, width))
    return ModelSource(
        model,
        label,
        checkpoint,
        path,
        preprocessing,
        classes,
        config.get("data"),
        config.get("data_dir"),
        config,
    )


def _training_preprocessing(
    config: dict[str, Any], channels: int, crop: tuple[int, int]
) -> tuple[Preprocessing, tuple[str, ...] | None]:
    """A run's images as its loader fed them: the stored size, the training set's mean and std.

    The training set is loaded offline (it is cached after the first decode); when it cannot be
    found, ImageNet's statistics and the model's input size stand in, and ``source`` says so.
    """
    from cnnlab.data import load_dataset

    if config.get("data"):
        try:
            data = load_dataset(config["data"], data_dir=config.get("data_dir"), download=False)
        except CnnlabError:
            pass
        else:
            # a folder's test images: shorter side to size * 256 / 224, centre crop (as its loader)
            folder = str(data.name).startswith("folder:")
            stored = (data.input_size[1], data.input_size[2])
            resize = round(crop[0] * 256 / 224) if folder else stored
            return (
                Preprocessing(
                    mean=tuple(data.mean),
                    std=tuple(data.std),
                    crop=crop,
                    resize=resize,
                    channels=channels,
                    source=f"the {data.name} training set",
                ),
                tuple(data.classes),
            )
    missing = f"the training set {config.get('data')} was not found" if config.get("data") else ""
    return (
        Preprocessing(
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            crop=crop,
            resize=crop,
            channels=channels,
            source=f"ImageNet ({missing or 'no training set recorded'})",
        ),
        None,
    )


def _input_size(model: nn.Module) -> tuple[int, int, int]:
    """The ``(C, H, W)`` every cnnlab model declares."""
    channels, height, width = model.default_input_size  # type: ignore[misc]
    return int(channels), int(height), int(width)


def read_image(path: str | Path, channels: int) -> torch.Tensor:
    """An image file as uint8 ``[C, H, W]``, grey (C=1) or RGB (C=3)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no image at {path}; pass a PNG or JPEG file")
    try:
        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as error:  # PIL refuses it before decoding: say why
        raise ImageError(
            f"{path} is too large to open ({_image_size(path)}, over PIL's limit of "
            f"{Image.MAX_IMAGE_PIXELS} pixels); resize it to a few thousand pixels a side"
        ) from error
    except (UnidentifiedImageError, OSError) as error:
        raise ImageError(f"cannot decode {path} as an image ({error}); use PNG or JPEG") from error
    image = torch.from_numpy(pixels.copy())
    return image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1)


def _image_size(path: Path) -> str:
    """``W×H pixels`` of an image PIL refused as too large, read from its header only."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as opened:  # lazy: the header, not the pixels
            width, height = opened.size
        return f"{width}×{height} = {width * height} pixels"
    except Exception:  # noqa: BLE001 - only the wording depends on it
        return "size unknown"
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def prepare_image(
    image: torch.Tensor, preprocessing: Preprocessing
) -> tuple[torch.Tensor, torch.Tensor]:
    """An image as the model sees it, and as a person sees it.

    ``image`` is uint8 ``[C, H, W]``. An ``int`` resize is torchvision's ImageNet evaluation
    (shorter side resized with antialiasing, centre crop); a ``(H, W)`` resize is a small
    dataset's stored size, then fitted to the model's input bilinearly as cnnlab's loaders do.

    Returns:
        ``(input, display)``: ``input`` is float ``[C, H, W]`` normalised; ``display`` is the
        same pixels in [0, 1] before normalisation.
    """
    from cnnlab.data.augment import fit_input_size

    interpolation = TF.InterpolationMode(preprocessing.interpolation)
    if isinstance(preprocessing.resize, int):
        resized = TF.resize(image, [preprocessing.resize], interpolation, antialias=True)
        resized = TF.center_crop(resized, list(preprocessing.crop))
    else:
        resized = TF.resize(image, list(preprocessing.resize), interpolation, antialias=True)
    display = resized.float() / 255.0
    mean = _per_channel(preprocessing.mean, display.shape[0]).view(-1, 1, 1)
    std = _per_channel(preprocessing.std, display.shape[0]).view(-1, 1, 1)
    normalised = (display - mean) / std
    if tuple(normalised.shape[-2:]) != tuple(preprocessing.crop):
        size = (preprocessing.channels, *preprocessing.crop)
        normalised = fit_input_size(normalised.unsqueeze(0), size).squeeze(0)
        display = fit_input_size(display.unsqueeze(0), size).squeeze(0).clamp(0, 1)
    return normalised, display


def read_images(
    paths: Sequence[str | Path], preprocessing: Preprocessing
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Image files as one normalised batch ``[N, C, H, W]`` and their display versions."""
    if not paths:
        raise ImageError("give at least one image file")
    prepared = [prepare_image(read_image(p, preprocessing.channels), preprocessing) for p in paths]
    return torch.stack([batch for batch, _ in prepared]), [display for _, display in prepared]


def _per_channel(values: Sequence[float], channels: int) -> torch.Tensor:
    """Statistics for ``channels`` channels: RGB statistics are averaged for a grey model."""
    tensor = torch.tensor(tuple(values), dtype=torch.float32)
    if tensor.numel() == channels:
        return tensor
    if channels == 1:
        return tensor.mean().view(1)
    return tensor.mean().repeat(channels)
