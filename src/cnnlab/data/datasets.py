"""Datasets by name: ``load_dataset("cifar10", data_dir=...)`` returns a ``DatasetSplits``.

Names: ``digits`` (scikit-learn's bundled handwritten digits, always available offline),
``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn`` (torchvision's files,
downloaded when online, else read from the data directory, which may instead hold an
ImageFolder tree ``train/<class>/*`` + ``test/<class>/*``), ``folder:PATH`` (any ImageFolder
tree with ``train/`` and ``val/`` or ``test/``) and ``synthetic[:CxHxW]`` (random images for
speed tests).

The data directory is ``data_dir``, else ``$CNNLAB_DATA``, else ``~/.cache/cnnlab/data``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.cache import (
    MixedImageSizes,
    UnreadableImage,
    cache_path,
    cached_split,
    decode_image_file,
    decode_image_files,
    source_signature,
)
from cnnlab.data.splits import DatasetSplits, FolderImages, TensorImages, channel_mean_std
from cnnlab.errors import DatasetError, unknown_name

DatasetLoader = Callable[[str, Path, bool, bool], DatasetSplits]
_DATASETS: dict[str, DatasetLoader] = {}
_USAGE: dict[str, tuple[str, str]] = {}


def _register(name: str, usage: str, about: str) -> Callable[[DatasetLoader], DatasetLoader]:
    def add(loader: DatasetLoader) -> DatasetLoader:
        _DATASETS[name] = loader
        _USAGE[name] = (usage, about)
        return loader

    return add


def default_data_dir() -> Path:
    """``$CNNLAB_DATA`` if set, else ``~/.cache/cnnlab/data``."""
    return Path(os.environ.get("CNNLAB_DATA") or Path.home() / ".cache" / "cnnlab" / "data")


def list_datasets() -> list[str]:
    """The dataset names ``load_dataset`` accepts (``folder:PATH`` takes a path)."""
    return [usage for usage, _ in _USAGE.values()]


def dataset_descriptions() -> dict[str, str]:
    """Each name ``load_dataset`` accepts, with one line on what it is and where it is read."""
    return dict(_USAGE.values())


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    skip_bad_images: bool = False,
) -> DatasetSplits:
    """Load a dataset by name.

    Args:
        name: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``, ``svhn``,
            ``folder:PATH`` or ``synthetic[:CxHxW]``.
        data_dir: where the files are (or are downloaded to); default ``$CNNLAB_DATA`` or
            ``~/.cache/cnnlab/data``.
        download: try to download a missing torchvision dataset.
        skip_bad_images: leave image files that cannot be decoded (truncated, or not images
            despite their extension) out of an image folder, instead of stopping on the first;
            ``DatasetSplits.skipped`` lists them.

    Returns:
        The train and test splits with the dataset's classes, input size, mean and std.

    Raises:
        UnknownNameError: ``name`` is not a dataset (the nearest names are suggested).
        DatasetError: the files are missing or unreadable (the message says where it looked,
            or names the file).
    """
    base, _, argument = name.partition(":")
    base = base.strip().lower()
    if base == "imagenet":  # no download exists: it is licensed and fetched by hand
        raise DatasetError(
            "ImageNet cannot be downloaded for you; fetch ILSVRC-2012 from image-net.org, lay it "
            "out as train/<class>/*.JPEG and val/<class>/*.JPEG, and pass --data folder:PATH"
        )
    if base not in _DATASETS:
        raise unknown_name("dataset", name, _DATASETS, "run `cnnlab datasets`")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return _DATASETS[base](argument, root, download, skip_bad_images)


def is_folder_spec(name: str) -> bool:
    """Whether ``name`` is a ``folder:PATH`` dataset (its images where PATH says)."""
    return name.partition(":")[0].strip().lower() == "folder"


def absolute_data_spec(name: str, folder: str | os.PathLike | None = None) -> str:
    """``name`` with a ``folder:PATH`` made absolute (``folder`` replaces PATH when given), so
    that a run records where its images are, whichever directory it is later read from."""
    base, _, argument = name.partition(":")
    if not is_folder_spec(name) or not (argument or folder):
        return name
    path = Path(folder if folder is not None else argument).expanduser()
    return f"{base}:{path.absolute()}"


def _in_memory(
    name: str,
    num_classes: int,
    classes: list[str],
    train: TensorImages,
    test: TensorImages,
    **options,
) -> DatasetSplits:
    """Splits held in memory: their input size and channel statistics are the training images'."""
    mean, std = channel_mean_std(train.images)
    input_size = tuple(train.images.shape[1:])
    return DatasetSplits(name, num_classes, classes, input_size, mean, std, train, test, **options)


@_register(
    "digits", "digits", "scikit-learn's 1,797 handwritten digits, 8x8 scaled to 32x32, bundled"
)
def _load_digits(argument: str, data_dir: Path, download: bool, skip_bad: bool) -> DatasetSplits:
    """scikit-learn's 1,797 handwritten 8x8 digits, upsampled to 32x32 for LeNet-5.

    The split is fixed: 360 test images (20%), stratified by class, chosen with
    ``train_test_split(..., stratify=labels, random_state=0)``; 1,437 remain for training.
    The 0-16 grey levels are scaled to 0-255 and the images resized bilinearly. Decoding
    takes milliseconds, so nothing is cached on disk.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    small = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)
    large = F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False)
    images = large.round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    train_index, test_index = train_test_split(
        np.arange(len(labels)), test_size=360, stratify=bunch.target, random_state=0
    )
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    train = TensorImages(images[train_index], labels[train_index])
    test = TensorImages(images[test_index], labels[test_index])
    return _in_memory(
        "digits",
        10,
        [str(d) for d in range(10)],
        train,
        test,
        augment="crop",
        crop_padding=2,
        source="sklearn.datasets.load_digits",
    )


@_register(
    "synthetic", "synthetic[:CxHxW]", "random images and labels (default 3x32x32), for speed tests"
)
def _load_synthetic(argument: str, data_dir: Path, download: bool, skip_bad: bool) -> DatasetSplits:
    """Uniform random uint8 images and labels (10 classes), fixed by seed 0, for speed tests.

    ``synthetic`` is 3x32x32 with 10,000 training and 2,000 test images; ``synthetic:CxHxW``
    sets the size, with as many images as fit in 256 MiB (at least 256, at most 10,000).
    """
    shape = (3, 32, 32)
    if argument:
        match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", argument.strip().lower())
        if not match or min(int(g) for g in match.groups()) < 1:
            raise DatasetError(
                f"bad synthetic size '{argument}'; write it as CxHxW, e.g. synthetic:3x224x224"
            )
        shape = tuple(int(g) for g in match.groups())
    image_bytes = shape[0] * shape[1] * shape[2]
    num_train = max(256, min(10_000, (256 << 20) // image_bytes))
    num_test = max(64, num_train // 5)
    generator = torch.Generator().manual_seed(0)

    def split(count: int) -> TensorImages:
        images = torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=generator)
        return TensorImages(images, torch.randint(0, 10, (count,), generator=generator))

    train, test = split(num_train), split(num_test)
    name = "synthetic" if shape == (3, 32, 32) else f"synthetic:{'x'.join(map(str, shape))}"
    return _in_memory(
        name,
        10,
        [f"class{i}" for i in range(10)],
        train,
        test,
        augment="none",
        source="random (seed 0)",
    )


# ---------------------------------------------------------------- files as torchvision ships them

SplitArrays = tuple[TensorImages, TensorImages, list[str]]


def _unpickle(path: Path) -> dict:
    """One file of the official CIFAR python version (a pickled dict with bytes keys)."""
    import pickle

    with open(path, "rb") as file:
        return pickle.load(file, encoding="bytes")


def _cifar_files(folder: str, train: list[str], test: list[str], meta: str) -> Callable:
    def files(root: Path) -> dict[str, list[Path]]:
        base = root / folder
        return {
            "train": [base / f for f in train],
            "test": [base / f for f in test],
            "meta": [base / meta],
        }

    return files


def _read_cifar(files: dict[str, list[Path]], label_key: bytes, names_key: bytes) -> SplitArrays:
    def read(paths: list[Path]) -> TensorImages:
        batches = [_unpickle(p) for p in paths]
        data = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
        return TensorImages(torch.from_numpy(data.copy()), torch.from_numpy(labels))

    classes = [n.decode() for n in _unpickle(files["meta"][0])[names_key]]
    return read(files["train"]), read(files["test"]), classes


def _torchvision_files(folder: str, names: list[str]) -> Callable:
    def files(root: Path) -> dict[str, list[Path]]:
        return {"all": [root / folder / n for n in names]}

    return files


def _read_torchvision(make: Callable[[Path, bool], object]) -> Callable:
    """Read a torchvision dataset object's in-memory arrays (MNIST-style ``data``/``targets``,
    SVHN-style ``data``/``labels``)."""

    def read(files: dict[str, list[Path]], root: Path) -> SplitArrays:
        splits = []
        for train in (True, False):
            dataset = make(root, train)
            data = torch.as_tensor(np.asarray(dataset.data))
            images = data.unsqueeze(1) if data.ndim == 3 else data
            labels = getattr(dataset, "targets", None)
            labels = getattr(dataset, "labels", None) if labels is None else labels
            splits.append(TensorImages(images.contiguous(), torch.as_tensor(labels).long()))
        classes = list(getattr(dataset, "classes", [str(d) for d in range(10)]))
        return splits[0], splits[1], classes

    return read


def _svhn(root: Path, train: bool):
    import importlib.util

    from torchvision.datasets import SVHN

    if importlib.util.find_spec("scipy") is None:
        raise DatasetError("reading svhn's .mat files needs scipy: pip install scipy")

    return SVHN(str(root), split="train" if train else "test", download=False)


def _download_with(cls_name: str, **kwargs) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        import torchvision.datasets

        getattr(torchvision.datasets, cls_name)(str(root), download=True, **kwargs)

    return download


@dataclass(eq=False)
class _NamedSet:
    """A torchvision dataset: its official files, how to read and download them, its recipe."""

    name: str
    _: KW_ONLY
    num_classes: int
    official: str
    files: Callable[[Path], dict[str, list[Path]]]
    read: Callable[[dict[str, list[Path]], Path], SplitArrays]
    download: list[Callable[[Path], None]]
    augment: str
    crop_padding: int
    about: str

    def __call__(self, argument: str, root: Path, download: bool, skip_bad: bool) -> DatasetSplits:
        if argument:
            raise DatasetError(f"dataset '{self.name}' takes no ':' argument, got '{argument}'")
        loaded = self._load_official(root) or self._load_folder_tree(root, skip_bad)
        if loaded is None and download:
            self._download(root)
            loaded = self._load_official(root)
        if loaded is None:
            raise DatasetError(
                f"{self.name} not found in {root} (looked for {self.official} or "
                f"train/ + test/ image folders in {root} and {root / self.name}); download it "
                f"with network access (leave out --no-download; download=True in Python) or pass "
                f"--data-dir DIR holding those files"
            )
        train, test, classes, source = loaded
        if len(classes) != self.num_classes:
            raise DatasetError(
                f"{source} has {len(classes)} classes, but {self.name} has {self.num_classes}; "
                f"point --data-dir at the {self.name} files"
            )
        return _in_memory(
            self.name,
            self.num_classes,
            classes,
            train,
            test,
            augment=self.augment,
            crop_padding=self.crop_padding,
            source=str(source),
        )

    def _load_official(self, root: Path):
        files = self.files(root)
        paths = [p for group in files.values() for p in group]
        if not all(p.is_file() for p in paths):
            return None
        signature = source_signature(paths)
        read_once = cache(partial(self._read, files, root))
        data_root = paths[0].parent
        train, classes = cached_split(
            cache_path(data_root, self.name, "train"),
            signature,
            lambda: (read_once()[0], read_once()[2]),
        )
        test, _ = cached_split(
            cache_path(data_root, self.name, "test"),
            signature,
            lambda: (read_once()[1], read_once()[2]),
        )
        return train, test, classes, data_root

    def _read(self, files: dict[str, list[Path]], root: Path) -> SplitArrays:
        try:
            return self.read(files, root)
        except DatasetError:
            raise
        except Exception as error:
            raise DatasetError(
                f"cannot read {self.name} from {root}: {error}; delete the files and "
                f"download them again"
            ) from error

    def _load_folder_tree(self, root: Path, skip_bad: bool):
        for base in (root, root / self.name):
            splits = folder_split_dirs(base)
            if splits is not None:
                train, test, classes = decode_folder_tree(
                    base, *splits, name=self.name, skip_bad=skip_bad
                )
                return train, test, classes, base
        return None

    def _download(self, root: Path) -> None:
        """Download into a temporary directory and copy into ``root`` only once it worked, so
        a failed download (offline, or a mistyped --data-dir) leaves nothing on disk."""
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cnnlab-download-") as staging:
            try:
                for download in self.download:
                    download(Path(staging))
            except Exception as error:
                # torchvision's message spans lines: what failed first, the cause last
                lines = [line.strip() for line in str(error).splitlines() if line.strip()]
                detail = type(error).__name__ if not lines else lines[0].rstrip(":")
                if len(lines) > 1:
                    detail = f"{detail}: {lines[-1]}"
                raise DatasetError(
                    f"{self.name} not found in {root} (looked for {self.official} or train/ + "
                    f"test/ image folders) and the download failed ({detail}); download it with "
                    f"network access or pass --data-dir DIR holding those files"
                ) from error
            try:
                shutil.copytree(staging, root, dirs_exist_ok=True)
            except OSError as error:
                raise DatasetError(
                    f"downloaded {self.name} but cannot write it to {root} ({error}); pass "
                    "--data-dir DIR in a writable place"
                ) from error


def _mnist_format(name: str, cls_name: str, about: str) -> _NamedSet:
    """A set in MNIST's file format (torchvision's ``cls_name``): ten classes of 28x28 grey
    images, padded by 2 to LeNet-5's 32x32 when cropped."""
    prefixes = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    prefixes += ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    def make(root: Path, train: bool):
        import torchvision.datasets

        return getattr(torchvision.datasets, cls_name)(str(root), train=train, download=False)

    return _NamedSet(
        name,
        num_classes=10,
        official=f"{cls_name}/raw/",
        files=_torchvision_files(f"{cls_name}/raw", prefixes),
        read=_read_torchvision(make),
        download=[_download_with(cls_name)],
        augment="none",
        crop_padding=2,
        about=about,
    )


def _cifar(num_classes: int, folder: str, train: list[str], label: bytes) -> _NamedSet:
    """CIFAR-10 or -100 as torchvision's ``CIFAR10``/``CIFAR100`` pickles in ``folder``: 60,000
    colour images 32x32, cropped from a 4-pixel padding and flipped. ``train`` names the training
    pickles (CIFAR-10 calls its test pickle and class names ``test_batch`` and ``batches.meta``,
    CIFAR-100 ``test`` and ``meta``); ``label`` + ``s`` keys the labels, + ``_names`` the names.
    """
    test, meta = (["test_batch"], "batches.meta") if num_classes == 10 else (["test"], "meta")
    return _NamedSet(
        f"cifar{num_classes}",
        num_classes=num_classes,
        official=f"{folder}/",
        files=_cifar_files(folder, train, test, meta),
        read=lambda files, root: _read_cifar(files, label + b"s", label + b"_names"),
        download=[_download_with(f"CIFAR{num_classes}")],
        augment="crop+flip",
        crop_padding=4,
        about=f"60,000 colour images 32x32, {num_classes} classes ({folder}/ or folders)",
    )


_NAMED_SETS = [
    _mnist_format(
        "mnist",
        "MNIST",
        "70,000 handwritten digits 28x28 (torchvision MNIST files or train/ + test/ folders)",
    ),
    _mnist_format(
        "fashion-mnist",
        "FashionMNIST",
        "70,000 Zalando clothing images 28x28 (torchvision FashionMNIST files or folders)",
    ),
    _cifar(10, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], b"label"),
    _cifar(100, "cifar-100-python", ["train"], b"fine_label"),
    _NamedSet(
        "svhn",
        num_classes=10,
        official="train_32x32.mat + test_32x32.mat",
        files=_torchvision_files(".", ["train_32x32.mat", "test_32x32.mat"]),
        read=_read_torchvision(_svhn),
        download=[_download_with("SVHN", split="train"), _download_with("SVHN", split="test")],
        augment="none",
        crop_padding=4,
        about="99,289 house-number digits 32x32 (train_32x32.mat + test_32x32.mat; needs scipy)",
    ),
]
for _named in _NAMED_SETS:
    _register(_named.name, _named.name, _named.about)(_named)


# ------------------------------------------------------------------------- image folder trees

IN_MEMORY_MAX_SIDE = 64
IN_MEMORY_MAX_BYTES = 2 << 30
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def folder_split_dirs(base: Path) -> tuple[Path, Path] | None:
    """``(base/train, base/test or base/val)`` when both exist, else None."""
    train = base / "train"
    test = next((base / n for n in ("test", "val") if (base / n).is_dir()), None)
    return (train, test) if train.is_dir() and test is not None else None


def _folder_samples(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """ImageFolder's classes (sorted folder names) and (path, class index) samples."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, class_to_idx = find_classes(str(split_dir))
        samples = make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS)
    except (FileNotFoundError, OSError) as error:
        raise DatasetError(
            f"{split_dir} is not an ImageFolder tree ({error}); lay it out as "
            f"{split_dir}/<class>/<image>.jpg"
        ) from error
    return classes, samples


def _decode_split(
    paths: list[str], labels: torch.Tensor, classes: list[str], description: str, skip_bad: bool
) -> tuple[TensorImages, list[str]]:
    images, bad = decode_image_files(paths, description=description, skip_bad=skip_bad)
    if bad:
        kept = torch.ones(len(paths), dtype=torch.bool)
        kept[bad] = False
        labels = labels[kept]
    return TensorImages(images, labels, [paths[i] for i in bad]), classes


def decode_folder_tree(
    base: Path, train_dir: Path, test_dir: Path, *, name: str, skip_bad: bool = False
) -> tuple[TensorImages, TensorImages, list[str]]:
    """Decode an ImageFolder tree of equal-size images into tensors, cached in ``base``.

    The cache (``base/.cnnlab-cache-imagefolder-<split>.pt``) depends on the files only, so
    ``--data cifar10`` and ``--data folder:PATH`` on the same tree share it; ``name`` only
    labels the progress bar.

    Raises:
        MixedImageSizes: the images differ in size.
        UnreadableImage: a file cannot be decoded (also when a cache made with ``skip_bad``
            left it out) and ``skip_bad`` is False.
        DatasetError: train and test name different classes.
    """
    splits, classes = [], None
    for split_dir in (train_dir, test_dir):
        split_classes, samples = _folder_samples(split_dir)
        if classes is not None and split_classes != classes:
            raise DatasetError(
                f"{test_dir} and {train_dir} hold different class folders; both must have "
                f"the same <class>/ subfolders"
            )
        classes = split_classes
        paths = [p for p, _ in samples]
        labels = torch.tensor([c for _, c in samples], dtype=torch.int64)

        description = f"{name} {split_dir.name}"
        decode = partial(_decode_split, paths, labels, classes, description, skip_bad)
        split, _ = cached_split(
            cache_path(base, "imagefolder", split_dir.name), source_signature(paths), decode
        )
        if split.skipped and not skip_bad:
            raise UnreadableImage(split.skipped[0], "left out as unreadable when last decoded")
        splits.append(split)
    return splits[0], splits[1], classes


@_register(
    "folder", "folder:PATH", "any ImageFolder tree: PATH/train/<class>/*, PATH/val/ or PATH/test/"
)
def _load_folder(argument: str, data_dir: Path, download: bool, skip_bad: bool) -> DatasetSplits:
    """Any ImageFolder tree ``PATH/train/<class>/*`` + ``PATH/test/`` (or ``PATH/val/``).

    Trees of small images of one size (up to 64x64, 2 GiB decoded, e.g. CIFAR as JPEGs) are
    decoded into memory and cached like the named sets, with crop+flip (padding H/8) as their
    default augmentation; larger ones (ImageNet) stay on disk and are read by DataLoader
    workers with ImageNet's mean and std and the Inception crop as default augmentation.
    """
    if not argument:
        raise DatasetError("folder needs a path: --data folder:PATH (PATH holds train/ and val/)")
    base = Path(argument).expanduser()
    splits = folder_split_dirs(base)
    if splits is None:
        raise DatasetError(
            f"no image folder tree at {base} (looked for {base / 'train'} and "
            f"{base / 'val'} or {base / 'test'}); lay it out as PATH/train/<class>/<image>"
        )
    train_dir, test_dir = splits
    classes, train_samples = _folder_samples(train_dir)
    if not train_samples:
        raise DatasetError(f"no images in {train_dir}; put them in {train_dir}/<class>/")
    first = _first_readable(train_samples, skip_bad)
    channels, height, width = (1 if first.shape[0] == 1 else 3), *first.shape[-2:]
    decoded_bytes = len(train_samples) * channels * height * width
    name = f"folder:{base}"
    if max(height, width) <= IN_MEMORY_MAX_SIDE and decoded_bytes <= IN_MEMORY_MAX_BYTES:
        try:
            train, test, classes = decode_folder_tree(
                base, train_dir, test_dir, name="folder", skip_bad=skip_bad
            )
        except MixedImageSizes:
            pass
        else:
            return _in_memory(
                name,
                len(classes),
                classes,
                train,
                test,
                augment="crop+flip",
                crop_padding=max(1, height // 8),
                source=str(base),
            )
    test_classes, test_samples = _folder_samples(test_dir)
    if test_classes != classes:
        raise DatasetError(
            f"{test_dir} and {train_dir} hold different class folders; both must have the "
            f"same <class>/ subfolders"
        )
    return DatasetSplits(
        name=name,
        num_classes=len(classes),
        classes=classes,
        input_size=(3, 224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        train=FolderImages(train_dir, train_samples, skip_bad),
        test=FolderImages(test_dir, test_samples, skip_bad),
        augment="inception",
        source=str(base),
    )


def _first_readable(samples: list[tuple[str, int]], skip_bad: bool) -> torch.Tensor:
    """The first image that decodes (it sets the size); with ``skip_bad`` bad ones are passed."""
    for path, _ in samples:
        try:
            return decode_image_file(path)
        except UnreadableImage:
            if not skip_bad:
                raise
    raise DatasetError(f"none of the {len(samples)} training images can be decoded")
