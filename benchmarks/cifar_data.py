"""The shared CIFAR-10 ImageFolder tree for the benchmarks, unpacked once, or a subset of it."""

from __future__ import annotations

import argparse
import shutil
import tarfile
import tempfile
from pathlib import Path

SHARED_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say where CIFAR-10 is and how much of it to use."""
    parser.add_argument("--data-dir", help="an unpacked CIFAR-10 ImageFolder tree")
    parser.add_argument("--tarball", default=str(SHARED_TARBALL))
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "cnnlab_bench"))
    parser.add_argument("--train-subset", type=int, default=0, help="images (0: all 50,000)")
    parser.add_argument("--test-subset", type=int, default=0, help="images (0: all 10,000)")


def prepare_data(args) -> Path:
    """The CIFAR-10 ImageFolder tree (unpacked once), or a class-balanced subset of it."""
    root = Path(args.data_dir) if args.data_dir else Path(args.cache_dir) / "cifar10-jpg"
    if not (root / "train").is_dir():
        tarball = Path(args.tarball)
        print(f"unpacking {tarball} into {root.parent} ...", flush=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(root, filter="data")
    if not args.train_subset and not args.test_subset:
        return root
    subset = Path(args.cache_dir) / f"cifar10-subset-{args.train_subset}-{args.test_subset}"
    if not subset.is_dir():
        tmp = subset.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for split, count in (("train", args.train_subset), ("test", args.test_subset)):
            for class_dir in sorted((root / split).iterdir()):
                files = sorted(class_dir.iterdir())
                keep = files[: count // 10] if count else files
                target = tmp / split / class_dir.name
                target.mkdir(parents=True)
                for file in keep:
                    (target / file.name).symlink_to(file)
        tmp.rename(subset)
    return subset
