"""Batched augmentation of uint8 image tensors: a whole batch per call, no per-image Python.

torchvision's transforms work one image at a time (or apply the same random parameters to a
whole batch), which leaves a training loop over in-memory CIFAR bound by Python overhead. Here
the random parameters are drawn for every image of a batch at once and applied with a few
tensor ops per batch on the training device: the batch is taken from a copy of the dataset
zero-padded once, every image's crop window picked from an ``unfold`` view by one indexing op,
the chosen images mirrored with ``torch.where`` (no host synchronisation), and the uint8 result
converted and normalised by one fused ``addcmul``.

Augmentation names (``augment=``):

* ``"none"``: the images as stored.
* ``"crop"``: random crop of the stored size from the image zero-padded on every side by the
  dataset's ``crop_padding`` (4 pixels for 32x32 CIFAR, as He et al. 2016; 2 for digits).
* ``"flip"``: horizontal flip with probability 1/2.
* ``"crop+flip"``: both (the standard CIFAR augmentation).
* ``"translateN"`` (``"translate"`` is ``translate2``): random translation by up to N pixels
  of the image reflect-padded by N (Jordan 2024's ``translate=2``), instead of ``crop``'s zeros.
* ``"altflip"``: alternating flip (Jordan 2024): each image is mirrored or not at random in the
  first epoch, and in every later epoch the opposite of the epoch before, so every two epochs
  show each image both ways instead of a random half of them twice.
* ``"jitterP"`` (``"jitter"`` is ``jitter15``): each image's brightness and contrast varied at
  random by up to P%: the normalised image ``x`` becomes ``(x + b) * c`` with ``b`` drawn from
  [-P/100, P/100] (a shift of up to P% of each channel's standard deviation) and ``c`` from
  [1 - P/100, 1 + P/100] (contrast about the dataset's mean), one pair per image. Hiverge's
  CIFAR-10 speedrun (2025) added it to Jordan's recipe for accuracy at the same number of steps;
  on ``speedrun_cifar`` cut to 7 epochs it bought nothing (BENCHMARKS.md), so no recipe uses it.

Parts combine with ``+``: ``"translate2+altflip"`` is the speedrun recipe's.
* ``"default"``: the dataset's standard: ``crop+flip`` for CIFAR-10/100, ``crop`` (a small
  translation) for digits, ``none`` for MNIST, Fashion-MNIST and SVHN (digits must not be
  mirrored), ``none`` for synthetic data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, GeometryError

TENSOR_AUGMENTATIONS = ("default", "none", "crop", "flip", "crop+flip")
AUGMENT_PARTS = ("none", "crop", "flip", "translateN", "altflip", "jitterP")
TRANSLATE_PIXELS = 2
JITTER_PERCENT = 15
_TRANSLATE = re.compile(r"translate(\d*)")
_JITTER = re.compile(r"jitter(\d*)")


@dataclass(frozen=True)
class BatchAugment:
    """Random crop with zero padding and horizontal flip of a uint8 batch [B, C, H, W].

    Attributes:
        crop_padding: padding on each side before the random crop; 0 disables the crop.
        flip: whether to mirror a random half of the images.
        padding_mode: ``"constant"`` (zeros, ``crop``) or ``"reflect"`` (``translate``).
        alternate_flip: the flips alternate per image from epoch to epoch (the loader sets them
            with :func:`alternating_flips`); implies ``flip``.
        jitter: the largest brightness shift and contrast change, as a fraction (``jitterP``
            is P/100); 0 leaves both alone.
    """

    crop_padding: int = 0
    flip: bool = False
    padding_mode: str = "constant"
    alternate_flip: bool = False
    jitter: float = 0.0

    @classmethod
    def from_name(cls, augment: str, *, dataset_default: str, crop_padding: int) -> BatchAugment:
        """The augmentation called ``augment`` (see the module docstring for the names)."""
        name = dataset_default if augment == "default" else augment
        parts = set(name.split("+")) - {"none"}
        translate = [p for p in parts if _TRANSLATE.fullmatch(p)]
        jitter = [p for p in parts if _JITTER.fullmatch(p)]
        percent = int(_JITTER.fullmatch(jitter[0]).group(1) or JITTER_PERCENT) if jitter else 0
        unknown = parts - {"crop", "flip", "altflip", *translate, *jitter}
        if unknown or len(translate) > 1 or (translate and "crop" in parts) or len(jitter) > 1:
            raise ConfigError(
                f"unknown augmentation '{augment}' for an in-memory dataset; choose one of "
                f"{', '.join(TENSOR_AUGMENTATIONS)}, or join parts of "
                f"{', '.join(AUGMENT_PARTS)} with '+' (crop and translate exclude each other)"
            )
        if jitter and not 0 < percent < 100:
            raise ConfigError(
                f"augmentation '{augment}': jitterP takes a percentage from 1 to 99, got {percent}"
            )
        if translate:
            pixels = _TRANSLATE.fullmatch(translate[0]).group(1)
            crop_padding, padding_mode = int(pixels or TRANSLATE_PIXELS), "reflect"
        else:
            crop_padding, padding_mode = (crop_padding if "crop" in parts else 0), "constant"
        return cls(
            crop_padding=crop_padding,
            flip=bool(parts & {"flip", "altflip"}),
            padding_mode=padding_mode,
            alternate_flip="altflip" in parts,
            jitter=percent / 100,
        )

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip or self.jitter > 0

    def sample(
        self, batch_size: int, generator: torch.Generator, positions: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Random parameters for ``batch_size`` images: int64 [B, 3] = (top, left, flip).

        ``positions``: the number of crop offsets (rows, columns) when a window smaller than
        the stored size is cut (see :meth:`gather`'s ``crop``); by default every shift of the
        stored size inside the padding.
        """
        if positions is None:
            span = 2 * self.crop_padding + 1
            offsets = torch.randint(0, span, (batch_size, 2), generator=generator)
        else:
            offsets = torch.cat(
                [torch.randint(0, n, (batch_size, 1), generator=generator) for n in positions], 1
            )
        flips = torch.randint(0, 2, (batch_size, 1), generator=generator)
        return torch.cat([offsets, flips if self.flip else torch.zeros_like(flips)], dim=1)

    def sample_jitter(self, batch_size: int, generator: torch.Generator) -> torch.Tensor | None:
        """float32 [B, 2]: each image's brightness shift ``b`` and contrast factor ``c``
        (:meth:`jitter_batch`), or None without ``jitter``. Drawn after :meth:`sample` from the
        same generator, so the crops and flips are those of the same recipe without jitter."""
        if not self.jitter:
            return None
        spread = (torch.rand(batch_size, 2, generator=generator) * 2 - 1) * self.jitter
        spread[:, 1] += 1
        return spread

    @staticmethod
    def jitter_batch(images: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
        """Normalised float images [B, C, H, W] with image b's brightness and contrast changed:
        ``(x + jitter[b, 0]) * jitter[b, 1]``."""
        shift, factor = (jitter[:, i].view(-1, 1, 1, 1) for i in (0, 1))
        return torch.addcmul(shift * factor, images, factor)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """The stored images [N, C, H, W], zero-padded by ``crop_padding`` once per loader:
        the source :meth:`gather` reads."""
        padding = self.crop_padding
        if not padding:
            return images
        return F.pad(images, (padding, padding, padding, padding), mode=self.padding_mode)

    def gather(
        self,
        source: torch.Tensor,
        indices: torch.Tensor,
        params: torch.Tensor | None,
        crop: int | None = None,
    ) -> torch.Tensor:
        """Images ``indices`` of a :meth:`prepare`-d source, cropped and flipped by ``params``.

        Args:
            source: what :meth:`prepare` returned.
            indices: int64 [B], the images to take.
            params: int64 [B, 3] from :meth:`sample`, or None for the images as stored.
            crop: cut ``crop`` x ``crop`` windows instead of the stored size (``small_crop``).

        Returns:
            uint8 [B, C, H, W]: image b is ``pad(images[indices[b]])[:, top:top + H,
            left:left + W]``, mirrored left-right if its flip is set; H = W = ``crop`` if given.
        """
        batch = source.index_select(0, indices)
        padding = self.crop_padding
        stored = (source.shape[-2] - 2 * padding, source.shape[-1] - 2 * padding)
        if params is None or not (self.active or crop):
            return batch[..., padding : padding + stored[0], padding : padding + stored[1]]
        height, width = (crop, crop) if crop else stored
        if (height, width) != tuple(batch.shape[-2:]):
            windows = batch.unfold(2, height, 1).unfold(3, width, 1)  # [B, C, rows, cols, H, W]
            rows = torch.arange(len(indices), device=batch.device)
            batch = windows[rows, :, params[:, 0], params[:, 1]]
        if self.flip:
            batch = torch.where(params[:, 2, None, None, None].bool(), batch.flip(-1), batch)
        return batch


def alternating_flips(first_epoch: torch.Tensor, indices: torch.Tensor, epoch: int) -> torch.Tensor:
    """Flip bits (int64) of images ``indices`` in ``epoch`` under alternating flip.

    Args:
        first_epoch: one random bit per image of the dataset, its flip in epoch 0.
        indices: the images of a batch.
        epoch: the epoch (0-based); odd epochs invert every image's bit.
    """
    return first_epoch.index_select(0, indices).long() ^ (epoch % 2)


class Normalize:
    """uint8 [B, C, H, W] to float32 ``(x / 255 - mean) / std`` per channel in one fused op that
    keeps the input's memory format.

    The constants are put on the device once: building them per batch would copy from the host
    every step, and on a GPU such a copy waits for the queued work to finish.
    """

    def __init__(
        self, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu"
    ) -> None:
        scale = [1.0 / (255.0 * s) for s in std]
        shift = [-m / s for m, s in zip(mean, std, strict=True)]
        self.scale = torch.tensor(scale, device=device).view(1, -1, 1, 1)
        self.shift = torch.tensor(shift, device=device).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images, self.scale)


# A model at most this many pixels a side larger than the images gets them padded, not resized.
PAD_LIMIT = 4


def fit_method(have: Sequence[int], want: Sequence[int]) -> str:
    """How images of height x width ``have`` are fitted to a model's ``want``.

    ``"keep"`` when equal; ``"pad"`` (centred) when the model needs at most ``PAD_LIMIT``
    pixels more a side, as LeCun et al. 1998 put MNIST's 28x28 digits in LeNet-5's 32x32
    field so that strokes reach the centre of the top feature detectors' receptive fields;
    otherwise ``"resize"`` (CIFAR's 32 to AlexNet's 227).
    """
    (h, w), (want_h, want_w) = (int(s) for s in have[-2:]), (int(s) for s in want[-2:])
    if (h, w) == (want_h, want_w):
        return "keep"
    if 0 <= want_h - h <= 2 * PAD_LIMIT and 0 <= want_w - w <= 2 * PAD_LIMIT:
        return "pad"
    return "resize"


def describe_fit(have: Sequence[int], want: Sequence[int]) -> str:
    """One sentence on what :func:`fit_input_size` does to ``have`` images, and why."""
    method = fit_method(have, want)
    have_text, want_text = ("x".join(str(int(s)) for s in size[-2:]) for size in (have, want))
    if method == "keep":
        return f"images kept at {have_text}: the model takes them as they are"
    if method == "pad":
        side = max(int(want[-1]) - int(have[-1]), int(want[-2]) - int(have[-2])) / 2
        return (
            f"images padded (centred) from {have_text} to {want_text}, as LeNet-5's paper padded "
            f"MNIST: the model needs {want_text}, {side:g} pixels more a side (up to {PAD_LIMIT} "
            "are padded, more are resized)"
        )
    return (
        f"images resized (bilinear) from {have_text} to {want_text}: the model needs "
        f"{want_text}, too far from {have_text} to pad (up to {PAD_LIMIT} pixels a side)"
    )


def input_error(
    model: torch.nn.Module,
    size: Sequence[int],
    device: str | torch.device = "cpu",
    channels_last: bool = False,
) -> Exception | None:
    """The error ``model`` raises on one input of ``(C, H, W)`` ``size``, or None if it takes it."""
    probe = torch.zeros(1, *size, device=device)
    if channels_last:
        probe = probe.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(probe)
    except (RuntimeError, GeometryError) as error:
        return error
    finally:
        model.train(was_training)
    return None


def fitted_input_size(
    model: torch.nn.Module,
    data_size: Sequence[int],
    device: str | torch.device = "cpu",
    channels_last: bool = False,
) -> tuple[int, ...]:
    """What to feed ``model`` with images of ``data_size``: their own size when the model takes
    it, else the model's ``default_input_size`` (with the data's channels) when it takes that.

    Every command that feeds a dataset to a model asks here, so ``train``, ``lr-find`` and the
    rest pad MNIST into LeNet-5's 32x32 field alike (:func:`fit_input_size` does the fitting).
    """
    data_size = tuple(int(s) for s in data_size)
    if input_error(model, data_size, device, channels_last) is None:
        return data_size
    own = (data_size[0], *getattr(model, "default_input_size", data_size)[1:])
    if own != data_size and input_error(model, own, device, channels_last) is None:
        return own
    return data_size


def fit_input_size(
    images: torch.Tensor, input_size: Sequence[int], fill: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """Fit a float batch to a model's ``(C, H, W)``: pad or resize (:func:`fit_method`), and
    repeat 1 channel to 3.

    Lets CIFAR feed an ImageNet-sized model (32 to 224), MNIST feed LeNet-5 (28 padded to 32)
    or grey digits feed an RGB model. ``fill`` is the padding's value, per channel
    (``[1, C, 1, 1]``) or one number: a normalised batch passes the value of a black pixel.
    """
    channels, height, width = (int(s) for s in input_size)
    have = images.shape[1]
    if have != channels:
        if not (have == 1 and channels == 3):
            raise ConfigError(
                f"the dataset has {have}-channel images but the model expects {channels}; "
                f"build the model with in_chans={have}"
            )
        images = images.expand(-1, 3, -1, -1)
    method = fit_method(images.shape[-2:], (height, width))
    if method == "pad":
        top, left = (height - images.shape[-2]) // 2, (width - images.shape[-1]) // 2
        pads = (left, width - images.shape[-1] - left, top, height - images.shape[-2] - top)
        images = F.pad(images - fill, pads) + fill
    elif method == "resize":
        shrinking = height < images.shape[-2] or width < images.shape[-1]
        images = F.interpolate(
            images, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking
        )
    return images
