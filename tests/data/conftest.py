"""Fixtures: a tiny CIFAR-10 as official python batches and as an ImageFolder tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_files import random_split, write_cifar_batches, write_image_folder


@pytest.fixture
def cifar_splits():
    """20 training and 10 test images, two and one per class."""
    return random_split(20, seed=1), random_split(10, seed=2)


@pytest.fixture
def cifar_batches_dir(tmp_path, cifar_splits) -> Path:
    write_cifar_batches(tmp_path / "batches", *cifar_splits)
    return tmp_path / "batches"


@pytest.fixture
def cifar_folder_dir(tmp_path, cifar_splits) -> Path:
    (train_images, train_labels), (test_images, test_labels) = cifar_splits
    write_image_folder(tmp_path / "folder" / "train", train_images, train_labels)
    write_image_folder(tmp_path / "folder" / "test", test_images, test_labels)
    return tmp_path / "folder"
