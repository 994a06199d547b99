"""CIFAR-10 loading alone: cnnlab's BatchLoader against a tutorial-style DataLoader.

cnnlab serves batches from the decoded uint8 tensor with batched tensor ops (random crop with
4-pixel zero padding, horizontal flip, normalisation); the reference is what a tutorial
writes: ``ImageFolder`` + ``DataLoader(num_workers=2)`` with ``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip``, ``ToTensor`` and ``Normalize``. Both make batches of 128 training
images on the CPU; the script prints batches/s of each and their ratio. Example::

    python benchmarks/data_loader.py --data-dir /tmp/cifar10-jpg
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
import torchvision
from torchvision import transforms

from cnnlab.data import load_dataset, make_loader


def batches_per_second(batches, steps: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 ImageFolder tree")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150, help="batches timed for cnnlab")
    parser.add_argument("--reference-steps", type=int, default=50)
    args = parser.parse_args()

    cifar = load_dataset("cifar10", data_dir=args.data_dir)
    loader = make_loader(
        "train", cifar, batch_size=args.batch_size, train=True, augment="crop+flip"
    )
    ours = batches_per_second(iter(loader.epoch(0)), args.steps)

    tutorial = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(cifar.mean, cifar.std),
        ]
    )
    images = torchvision.datasets.ImageFolder(
        str(Path(args.data_dir) / "train"), transform=tutorial
    )
    reference_loader = torch.utils.data.DataLoader(
        images, batch_size=args.batch_size, shuffle=True, num_workers=2, drop_last=True
    )
    reference = batches_per_second(iter(reference_loader), args.reference_steps)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"cnnlab BatchLoader:   {ours:7.0f} batches/s ({ours * args.batch_size:8.0f} images/s)")
    print(
        f"tutorial DataLoader:  {reference:7.0f} batches/s "
        f"({reference * args.batch_size:8.0f} images/s)"
    )
    print(f"ratio: {ours / reference:.1f}x")


if __name__ == "__main__":
    main()
