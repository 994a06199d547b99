"""Writers of small datasets in the layouts cnnlab reads: CIFAR python batches, ImageFolders,
MNIST idx files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from cnnlab.data import DatasetSplits, TensorImages

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def random_split(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random 3x32x32 uint8 images with labels cycling over the 10 classes, sorted by
    label so that ImageFolder's order (class, then file name) is the same as the array order."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % 10
    order = torch.argsort(labels, stable=True)
    return images[order], labels[order]


def write_cifar_batches(root: Path, train, test) -> Path:
    """The official ``cifar-10-batches-py`` layout: five pickled training batches, one test."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_images, train_labels = train
    chunks = np.array_split(np.arange(len(train_labels)), 5)
    for number, chunk in enumerate(chunks, start=1):
        batch = {
            b"data": train_images[chunk].reshape(len(chunk), -1).numpy(),
            b"labels": train_labels[chunk].tolist(),
        }
        (folder / f"data_batch_{number}").write_bytes(pickle.dumps(batch))
    test_images, test_labels = test
    batch = {
        b"data": test_images.reshape(len(test_labels), -1).numpy(),
        b"labels": test_labels.tolist(),
    }
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [name.encode() for name in CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def write_image_folder(split_dir: Path, images, labels, classes=CIFAR10_CLASSES) -> list[Path]:
    """``split_dir/<class>/<index>.png`` for every image (PNG: lossless, so pixels compare)."""
    paths = []
    for index, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        path = split_dir / classes[label] / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(image, str(path))
        paths.append(path)
    return paths


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """The MNIST idx format: big-endian magic and sizes, then the raw bytes."""
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, train_images, train_labels, test_images, test_labels) -> Path:
    """The four official MNIST idx files under ``root/MNIST/raw`` (uint8 [N, 28, 28] images)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.asarray(train_images), 2051)
    write_idx(raw / "train-labels-idx1-ubyte", np.asarray(train_labels), 2049)
    write_idx(raw / "t10k-images-idx3-ubyte", np.asarray(test_images), 2051)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.asarray(test_labels), 2049)
    return raw


def numbered_dataset(
    count: int,
    augment: str,
    *,
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    crop_padding: int,
) -> DatasetSplits:
    """Random 3 x size x size images whose label is their index, so every batch says what it
    holds; train and test are the same split."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)
    split = TensorImages(images, torch.arange(count))
    return DatasetSplits(
        name="numbered",
        num_classes=count,
        classes=[str(i) for i in range(count)],
        input_size=(3, size, size),
        mean=mean,
        std=std,
        train=split,
        test=split,
        augment=augment,
        crop_padding=crop_padding,
    )
