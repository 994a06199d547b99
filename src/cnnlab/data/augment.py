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
* ``"default"``: the dataset's standard: ``crop+flip`` for CIFAR-10/100, ``crop`` (a small
  translation) for digits, ``none`` for MNIST, Fashion-MNIST and SVHN (digits must not be
  mirrored), ``none`` for synthetic data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError

TENSOR_AUGMENTATIONS = ("default", "none", "crop", "flip", "crop+flip")


@dataclass(frozen=True)
class BatchAugment:
    """Random crop with zero padding and horizontal flip of a uint8 batch [B, C, H, W].

    Attributes:
        crop_padding: zero padding on each side before the random crop; 0 disables the crop.
        flip: whether to mirror a random half of the images.
    """

    crop_padding: int = 0
    flip: bool = False

    @classmethod
    def from_name(cls, augment: str, *, dataset_default: str, crop_padding: int) -> BatchAugment:
        """The augmentation called ``augment`` (see the module docstring for the names)."""
        if augment not in TENSOR_AUGMENTATIONS:
            raise ConfigError(
                f"unknown augmentation '{augment}' for an in-memory dataset; "
                f"choose one of {', '.join(TENSOR_AUGMENTATIONS)}"
            )
        name = dataset_default if augment == "default" else augment
        parts = set(name.split("+")) - {"none"}
        return cls(crop_padding=crop_padding if "crop" in parts else 0, flip="flip" in parts)

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Random parameters for ``batch_size`` images: int64 [B, 3] = (top, left, flip)."""
        offsets = torch.randint(0, 2 * self.crop_padding + 1, (batch_size, 2), generator=generator)
        flips = torch.randint(0, 2, (batch_size, 1), generator=generator)
        return torch.cat([offsets, flips if self.flip else torch.zeros_like(flips)], dim=1)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """The stored images [N, C, H, W], zero-padded by ``crop_padding`` once per loader:
        the source :meth:`gather` reads."""
        padding = self.crop_padding
        return F.pad(images, (padding, padding, padding, padding)) if padding else images

    def gather(
        self, source: torch.Tensor, indices: torch.Tensor, params: torch.Tensor | None
    ) -> torch.Tensor:
        """Images ``indices`` of a :meth:`prepare`-d source, cropped and flipped by ``params``.

        Args:
            source: what :meth:`prepare` returned.
            indices: int64 [B], the images to take.
            params: int64 [B, 3] from :meth:`sample`, or None for the images as stored.

        Returns:
            uint8 [B, C, H, W]: image b is ``pad(images[indices[b]])[:, top:top + H,
            left:left + W]``, mirrored left-right if its flip is set.
        """
        batch = source.index_select(0, indices)
        padding = self.crop_padding
        if params is None or not self.active:
            size = (source.shape[-2] - 2 * padding, source.shape[-1] - 2 * padding)
            return batch[..., padding : padding + size[0], padding : padding + size[1]]
        if padding:
            height, width = batch.shape[-2] - 2 * padding, batch.shape[-1] - 2 * padding
            windows = batch.unfold(2, height, 1).unfold(3, width, 1)  # [B, C, 2p+1, 2p+1, H, W]
            rows = torch.arange(len(indices), device=batch.device)
            batch = windows[rows, :, params[:, 0], params[:, 1]]
        if self.flip:
            batch = torch.where(params[:, 2, None, None, None].bool(), batch.flip(-1), batch)
        return batch


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


def fit_input_size(images: torch.Tensor, input_size: Sequence[int]) -> torch.Tensor:
    """Resize a float batch to a model's ``(C, H, W)``: bilinear resize, 1 channel repeated to 3.

    Lets CIFAR feed an ImageNet-sized model (32 to 224) or grey digits feed an RGB model.
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
    if tuple(images.shape[-2:]) != (height, width):
        shrinking = height < images.shape[-2] or width < images.shape[-1]
        images = F.interpolate(
            images, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking
        )
    return images
