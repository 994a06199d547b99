"""Unreadable images are named (or skipped on request), and a failed lookup creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.io import write_jpeg, write_png

from cnnlab.data import FolderImages, load_dataset, make_loader
from cnnlab.data.cache import UnreadableImage
from cnnlab.errors import DatasetError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


def _folder(root, size=16, per_class=3):
    """root/{train,test}/{a,b}/N.png of ``size``x``size`` grey-level images."""
    for split in ("train", "test"):
        for label, value in (("a", 40), ("b", 200)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(per_class):
                image = torch.full((3, size, size), value + index, dtype=torch.uint8)
                write_png(image, str(folder / f"{index}.png"))
    return root


def _truncate_jpeg(path):
    write_jpeg(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("kind", ["truncated-jpeg", "text-named-png"])
def test_unreadable_image_is_named_in_one_line(tmp_path, kind):
    root = _folder(tmp_path / "set")
    bad = root / "train" / "b" / ("9.jpg" if kind == "truncated-jpeg" else "9.png")
    if kind == "truncated-jpeg":
        _truncate_jpeg(bad)
    else:
        bad.write_text("not an image at all\n")
    with pytest.raises(UnreadableImage) as error:
        load_dataset(f"folder:{root}")
    message = str(error.value)
    assert str(bad) in message and "--skip-bad-images" in message and "\n" not in message
    assert not list(root.glob(".cnnlab-cache-*train*"))  # nothing cached from a failed decode


def test_skip_bad_images_leaves_them_out_and_lists_them(tmp_path):
    root = _folder(tmp_path / "set")
    bad = root / "train" / "a" / "00.png"  # sorts first: it cannot set the image size
    bad.write_bytes(b"\x89PNG broken")
    loaded = load_dataset(f"folder:{root}", skip_bad_images=True)
    assert loaded.skipped == [str(bad)]
    assert len(loaded.train) == 6 and len(loaded.test) == 6
    # labels stay aligned with the images that remain: class a is dark, class b bright
    for image, label in zip(loaded.train.images, loaded.train.labels, strict=True):
        assert (int(image.float().mean()) < 128) == (int(label) == 0)
    # the cache remembers the left-out file: without the flag the file is still refused
    with pytest.raises(UnreadableImage, match="00.png"):
        load_dataset(f"folder:{root}")
    again = load_dataset(f"folder:{root}", skip_bad_images=True)
    assert again.skipped == [str(bad)] and torch.equal(again.train.images, loaded.train.images)


def test_large_folder_names_or_skips_the_bad_file_while_loading(tmp_path):
    root = _folder(tmp_path / "big", size=80, per_class=2)  # > 64 px: read by DataLoader
    bad = root / "train" / "b" / "1.png"
    bad.write_text("html error page")
    strict = load_dataset(f"folder:{root}")
    assert isinstance(strict.train, FolderImages)
    loader = make_loader("train", strict, batch_size=4, train=False, num_workers=0)
    with pytest.raises(UnreadableImage, match="1.png"):
        list(loader.epoch(0))
    lenient = load_dataset(f"folder:{root}", skip_bad_images=True)
    loader = make_loader("train", lenient, batch_size=4, train=False, num_workers=0)
    batches = list(loader.epoch(0))
    assert sum(len(labels) for _, labels in batches) == 3
    assert loader.skipped == {str(bad)}


def test_failed_download_creates_no_directory(tmp_path, monkeypatch):
    """torchvision makes MNIST/raw before it fails offline; none of it may reach --data-dir."""
    import torchvision.datasets

    def offline(root, download=False, **kwargs):
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        (raw / "partial.gz").write_bytes(b"")
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    typo = tmp_path / "no" / "such" / "dir"
    with pytest.raises(DatasetError, match="download failed"):
        load_dataset("mnist", data_dir=typo, download=True)
    assert not (tmp_path / "no").exists()
