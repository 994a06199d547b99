"""What a loaded dataset is: its splits as decoded tensors or as image folders, plus its metadata.

Small sets are held as one uint8 tensor so that a whole batch can be gathered and augmented
with tensor ops on the training device; large sets stay on disk and are read by DataLoader
workers. Both carry the same metadata so the training engine treats them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class TensorImages:
    """A split decoded once into memory.

    Attributes:
        images: uint8 tensor [N, C, H, W], pixel values 0-255.
        labels: int64 tensor [N], class indices.
        skipped: files of the source left out because they could not be decoded.
    """

    images: torch.Tensor
    labels: torch.Tensor
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class FolderImages:
    """A split too large for memory: an ImageFolder tree read image by image.

    Attributes:
        root: the split's directory (``root/<class>/<image>``).
        samples: ``(path, class_index)`` pairs in ImageFolder's order.
        skip_bad: leave unreadable files out of the batches instead of stopping on them.
    """

    root: Path
    samples: list[tuple[str, int]]
    skip_bad: bool = False

    def __len__(self) -> int:
        return len(self.samples)


@dataclass
class DatasetSplits:
    """A dataset by name: train and test splits with what a model and a loader need to know.

    Attributes:
        name: the name it was loaded by (``cifar10``, ``folder:/data/imagenet``, ...).
        num_classes: number of classes.
        classes: class names, index i naming label i.
        input_size: ``(C, H, W)`` of the stored images (folders: the crop size models expect).
        mean: per-channel mean of the training images, in [0, 1] units.
        std: per-channel standard deviation of the training images, in [0, 1] units.
        train: the training split.
        test: the test (or validation) split.
        augment: what ``augment="default"`` means for this dataset (see ``cnnlab.data.augment``).
        crop_padding: zero padding of the random crop, in pixels.
        source: where the data was read from (a path, or a short description).
    """

    name: str
    num_classes: int
    classes: list[str]
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train: TensorImages | FolderImages
    test: TensorImages | FolderImages
    augment: str = "none"
    crop_padding: int = 4
    source: str = field(default="")

    @property
    def skipped(self) -> list[str]:
        """Files left out as unreadable (decoded splits; image folders skip while training)."""
        return [
            path
            for split in (self.train, self.test)
            if isinstance(split, TensorImages)
            for path in split.skipped
        ]


def channel_mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of a uint8 image tensor [N, C, H, W], in [0, 1] units.

    Counts the 256 pixel values per channel instead of converting to float, so the statistics
    of 50,000 CIFAR images cost a few hundred milliseconds and no extra memory.
    """
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1).cpu(), minlength=256).double()
        total = counts.sum()
        mean = (counts * levels).sum() / total
        var = (counts * (levels - mean) ** 2).sum() / total
        means.append(float(mean))
        # a channel that never varies (a synthetic set, a blank blue channel) is only centred:
        # dividing by its std of 0 would make every pixel infinite
        stds.append(float(var.sqrt()) or 1.0)
    return tuple(means), tuple(stds)
