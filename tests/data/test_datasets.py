"""Datasets by name: digits, synthetic, CIFAR in both layouts, folders, the cache, the errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from data_files import CIFAR10_CLASSES, random_split, write_idx, write_image_folder
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torchvision.io import write_jpeg, write_png

import cnnlab.data.datasets as datasets_module
from cnnlab.data import (
    DatasetSplits,
    FolderImages,
    TensorImages,
    list_datasets,
    load_dataset,
)
from cnnlab.data.splits import channel_mean_std
from cnnlab.errors import DatasetError, UnknownNameError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


# --------------------------------------------------------------------------------- digits


def test_digits_split_shapes_and_labels():
    digits = load_dataset("digits")
    assert isinstance(digits, DatasetSplits)
    assert (digits.num_classes, digits.input_size) == (10, (1, 32, 32))
    assert (len(digits.train), len(digits.test)) == (1437, 360)
    for split in (digits.train, digits.test):
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert split.images.shape[1:] == (1, 32, 32)
    # stratified: every class has 35-37 of the 360 test images (sklearn has 174-183 per class)
    assert torch.bincount(digits.test.labels, minlength=10).tolist() == pytest.approx(
        [36] * 10, abs=1
    )
    # all 1797 images used exactly once: compare against scikit-learn's labels
    all_labels = torch.cat([digits.train.labels, digits.test.labels]).bincount(minlength=10)
    assert all_labels.tolist() == np.bincount(load_digits().target).tolist()
    assert int(digits.train.images.max()) == 255  # 0-16 grey levels scaled to 0-255


def test_digits_are_the_documented_split_of_sklearn_images_resized():
    """The split is train_test_split(test_size=360, stratify, random_state=0), in sklearn's
    order; pixels are 0-16 scaled to 0-255 and resized by torchvision's bilinear resize."""
    digits = load_dataset("digits")
    bunch = load_digits()
    train_index, test_index = train_test_split(
        np.arange(1797), test_size=360, stratify=bunch.target, random_state=0
    )
    for split, index in ((digits.train, np.sort(train_index)), (digits.test, np.sort(test_index))):
        assert split.labels.tolist() == bunch.target[index].tolist()
        scaled = torch.from_numpy(bunch.images[index]).float().unsqueeze(1) * 255 / 16
        expected = TF.resize(scaled, [32, 32], interpolation=TF.InterpolationMode.BILINEAR)
        assert (split.images.float() - expected).abs().max() <= 0.5 + 1e-3


def test_digits_split_is_fixed_and_stats_match_float_computation():
    first, second = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.test.labels, second.test.labels)
    pixels = first.train.images.double() / 255
    assert first.mean[0] == pytest.approx(float(pixels.mean()), abs=1e-9)
    assert first.std[0] == pytest.approx(float(pixels.std(unbiased=False)), abs=1e-9)
    assert first.augment == "crop"  # digits are translated, never mirrored


def test_channel_mean_std_per_channel_matches_torch():
    images = torch.randint(0, 256, (7, 3, 5, 4), dtype=torch.uint8)
    mean, std = channel_mean_std(images)
    pixels = images.double() / 255
    assert mean == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist())
    assert std == pytest.approx(pixels.std(dim=(0, 2, 3), unbiased=False).tolist())


# ------------------------------------------------------------------------------ synthetic


def test_synthetic_default_and_sized():
    default = load_dataset("synthetic")
    assert default.input_size == (3, 32, 32) and default.num_classes == 10
    assert default.train.images.shape == (10_000, 3, 32, 32)
    assert int(default.train.labels.max()) <= 9
    sized = load_dataset("synthetic:1x8x8")
    assert sized.train.images.shape == (10_000, 1, 8, 8) and sized.input_size == (1, 8, 8)
    with pytest.raises(DatasetError, match="CxHxW"):
        load_dataset("synthetic:224x224")


# ------------------------------------------------------------------- names and missing data


def test_unknown_name_suggests_nearest():
    with pytest.raises(UnknownNameError, match="cifar10") as error:
        load_dataset("cifar-10")
    assert "Did you mean" in str(error.value)
    assert set(list_datasets()) >= {"digits", "mnist", "cifar10", "folder:PATH", "svhn"}


@pytest.mark.parametrize(
    ("name", "official"),
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("mnist", "MNIST/raw"),
        ("fashion-mnist", "FashionMNIST/raw"),
        ("svhn", "train_32x32.mat"),
    ],
)
def test_missing_dataset_names_where_it_looked(tmp_path, name, official):
    with pytest.raises(DatasetError) as error:
        load_dataset(name, data_dir=tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path) in message and official in message and "--data-dir" in message
    assert "\n" not in message


def test_failed_download_becomes_dataset_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DatasetError, match="download failed") as error:
        load_dataset("cifar10", data_dir=tmp_path, download=True)
    assert str(tmp_path) in str(error.value)


def test_data_dir_defaults_to_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "here"))
    with pytest.raises(DatasetError, match=str(tmp_path / "here")):
        load_dataset("cifar10", download=False)


def test_folder_without_splits_is_a_clear_error(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="val"):
        load_dataset(f"folder:{tmp_path}")


# ------------------------------------------------------------ CIFAR: both layouts, one tensor


def test_cifar_python_batches_load(cifar_batches_dir, cifar_splits):
    (train_images, train_labels), (test_images, test_labels) = cifar_splits
    cifar = load_dataset("cifar10", data_dir=cifar_batches_dir, download=False)
    assert cifar.classes == CIFAR10_CLASSES and cifar.input_size == (3, 32, 32)
    assert torch.equal(cifar.train.images, train_images)
    assert torch.equal(cifar.train.labels, train_labels)
    assert torch.equal(cifar.test.images, test_images)
    assert torch.equal(cifar.test.labels, test_labels)
    assert cifar.augment == "crop+flip" and cifar.crop_padding == 4


def test_cifar_image_folder_matches_python_batches(cifar_batches_dir, cifar_folder_dir):
    from_batches = load_dataset("cifar10", data_dir=cifar_batches_dir, download=False)
    from_folder = load_dataset("cifar10", data_dir=cifar_folder_dir, download=False)
    assert from_folder.classes == from_batches.classes
    for split in ("train", "test"):
        ours, theirs = getattr(from_folder, split), getattr(from_batches, split)
        assert torch.equal(ours.images, theirs.images)
        assert torch.equal(ours.labels, theirs.labels)


def test_image_folder_class_index_is_sorted_folder_names(tmp_path):
    images, labels = random_split(6, seed=3)
    classes = ["zebra", "ant", "moth", "bee", "cow", "yak", "owl", "elk", "gnu", "emu"]
    write_image_folder(tmp_path / "train", images, labels % 3, classes)
    write_image_folder(tmp_path / "val", images, labels % 3, classes)
    loaded = load_dataset(f"folder:{tmp_path}")
    assert loaded.classes == sorted(classes[:3])  # ['ant', 'moth', 'zebra']
    expected = [sorted(classes[:3]).index(classes[int(label) % 3]) for label in labels]
    assert sorted(loaded.train.labels.tolist()) == sorted(expected)
    assert isinstance(loaded.train, TensorImages)


def test_image_folder_with_wrong_class_count_is_rejected(tmp_path):
    images, labels = random_split(6, seed=4)
    write_image_folder(tmp_path / "train", images, labels % 2)
    write_image_folder(tmp_path / "test", images, labels % 2)
    with pytest.raises(DatasetError, match="2 classes"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_grey_jpeg_folder_decodes_one_channel(tmp_path):
    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            write_jpeg(torch.full((1, 16, 16), 200, dtype=torch.uint8), str(folder / "0.jpg"))
    loaded = load_dataset(f"folder:{tmp_path}")
    assert loaded.input_size == (1, 16, 16)
    assert abs(int(loaded.train.images.float().mean()) - 200) <= 2


def test_large_or_mixed_images_stay_on_disk(tmp_path):
    for split in ("train", "val"):
        for label, size in (("cat", (3, 80, 96)), ("dog", (3, 70, 60))):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            write_png(torch.zeros(size, dtype=torch.uint8), str(folder / "0.png"))
    loaded = load_dataset(f"folder:{tmp_path}")
    assert isinstance(loaded.train, FolderImages) and isinstance(loaded.test, FolderImages)
    assert loaded.input_size == (3, 224, 224) and loaded.augment == "inception"
    assert [label for _, label in loaded.train.samples] == [0, 1]
    assert loaded.mean == pytest.approx((0.485, 0.456, 0.406))


# ---------------------------------------------------------------------------------- cache


def test_cache_written_reused_and_invalidated(cifar_folder_dir, monkeypatch):
    first = load_dataset("cifar10", data_dir=cifar_folder_dir, download=False)
    caches = sorted(p.name for p in cifar_folder_dir.glob(".cnnlab-cache-*"))
    assert caches == [
        ".cnnlab-cache-imagefolder-test.pt",
        ".cnnlab-cache-imagefolder-train.pt",
    ]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(datasets_module, "decode_image_files", no_decoding)
    again = load_dataset("cifar10", data_dir=cifar_folder_dir, download=False)
    assert torch.equal(again.train.images, first.train.images)

    # change one training image: the train cache is stale, so the decoder must run again
    changed = next((cifar_folder_dir / "train" / "cat").iterdir())
    write_png(torch.zeros(3, 32, 32, dtype=torch.uint8), str(changed))
    os.utime(changed, ns=(0, 1))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset("cifar10", data_dir=cifar_folder_dir, download=False)
    monkeypatch.undo()
    refreshed = load_dataset("cifar10", data_dir=cifar_folder_dir, download=False)
    assert not torch.equal(refreshed.train.images, first.train.images)
    assert int(refreshed.train.images[refreshed.train.labels == 3].min()) == 0


def test_python_batches_cached_and_corrupt_cache_redecoded(cifar_batches_dir, monkeypatch):
    first = load_dataset("cifar10", data_dir=cifar_batches_dir, download=False)
    cache = cifar_batches_dir / "cifar-10-batches-py" / ".cnnlab-cache-cifar10-train.pt"
    stored = torch.load(cache, weights_only=True)
    assert torch.equal(stored["images"], first.train.images)

    def no_unpickling(path):
        raise AssertionError("unpickled again although the cache is valid")

    monkeypatch.setattr(datasets_module, "_unpickle", no_unpickling)
    load_dataset("cifar10", data_dir=cifar_batches_dir, download=False)
    monkeypatch.undo()
    cache.write_bytes(b"not a torch file")
    again = load_dataset("cifar10", data_dir=cifar_batches_dir, download=False)
    assert torch.equal(again.train.images, first.train.images)


# ------------------------------------------------------------------------ the real CIFAR-10


def test_real_cifar10_jpegs_decode(tmp_path):
    """A few images per class of the shared JPEG CIFAR-10, loaded as --data cifar10."""
    if not SHARED_CIFAR.is_file():
        pytest.skip(f"{SHARED_CIFAR} not present")
    if shutil.which("tar") is None:
        pytest.skip("no tar program to unpack the archive with")
    members = [f"{split}/*/000[01].jpg" for split in ("train", "test")]
    subprocess.run(
        ["tar", "xzf", str(SHARED_CIFAR), "-C", str(tmp_path), "--wildcards", *members],
        check=True,
    )
    cifar = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert cifar.classes == CIFAR10_CLASSES
    assert cifar.train.images.shape == (20, 3, 32, 32)
    assert cifar.train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert 0.3 < cifar.mean[0] < 0.7  # real photographs, not blank


# --------------------------------------------------------------------------- command line


def test_cli_lists_datasets(capsys):
    from cnnlab.cli import main

    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert "digits" in listing and "folder:PATH" in listing and "CNNLAB_DATA" in listing
    assert main(["datasets", "digits"]) == 0
    assert "1,437 images" in capsys.readouterr().out


def test_cli_unknown_dataset_is_one_line(tmp_path, cnnlab):
    result = cnnlab("datasets", "cifar-10")
    assert result.returncode == 2
    assert "Did you mean" in result.stderr and "Traceback" not in result.stderr
    assert io.StringIO(result.stderr.strip()).read().count("\n") == 0


def test_mnist_official_files_load_through_torchvision(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    test_images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(raw / "train-images-idx3-ubyte", train_images, 2051)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(12) % 10, 2049)
    write_idx(raw / "t10k-images-idx3-ubyte", test_images, 2051)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(5), 2049)
    mnist = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert mnist.input_size == (1, 28, 28) and mnist.augment == "none"
    assert torch.equal(mnist.train.images[:, 0], torch.from_numpy(train_images))
    assert mnist.train.labels.tolist() == (np.arange(12) % 10).tolist()
    assert mnist.classes[0].startswith("0")


def test_corrupt_python_batch_is_a_dataset_error(cifar_batches_dir):
    (cifar_batches_dir / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="cannot read cifar10"):
        load_dataset("cifar10", data_dir=cifar_batches_dir, download=False)
