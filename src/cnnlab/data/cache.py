"""Decode a small dataset once, keep the uint8 tensor on disk next to the data, reuse it.

Decoding 60,000 CIFAR JPEGs or unpickling the python batches takes seconds; loading the
decoded tensor takes a fraction of a second. The cache file records a signature of its source
(every file's name, size and modification time) and is decoded again when the source changes.
It is written atomically and read with ``weights_only=True``, so a cache never runs code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cnnlab.data.splits import TensorImages
from cnnlab.errors import DatasetError

CACHE_FORMAT = 1
_DECODE_CHUNK = 512


class MixedImageSizes(DatasetError):
    """The images of a folder differ in size, so they cannot share one tensor."""


def source_signature(paths: Iterable[str | os.PathLike]) -> str:
    """A digest of the files' paths, sizes and modification times: changes when any does."""
    digest = hashlib.sha1()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.fspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_path(data_root: Path, name: str, split: str) -> Path:
    """``DATA_ROOT/.cnnlab-cache-<name>-<split>.pt``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return data_root / f".cnnlab-cache-{safe}-{split}.pt"


def cached_split(
    path: Path,
    signature: str,
    decode: Callable[[], tuple[TensorImages, list[str]]],
) -> tuple[TensorImages, list[str]]:
    """The split stored at ``path`` if its signature matches, else ``decode()`` saved there.

    A cache that cannot be written (read-only data directory) is skipped: the data is decoded
    and used, only not kept.
    """
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a truncated or foreign file: decode again and overwrite it
            stored = None
        if (
            isinstance(stored, dict)
            and stored.get("format") == CACHE_FORMAT
            and stored.get("signature") == signature
        ):
            return TensorImages(stored["images"], stored["labels"]), list(stored["classes"])
    split, classes = decode()
    payload = {
        "format": CACHE_FORMAT,
        "signature": signature,
        "images": split.images.contiguous(),
        "labels": split.labels,
        "classes": list(classes),
    }
    _save_atomically(payload, path)
    return split, classes


def _save_atomically(payload: dict, path: Path) -> None:
    """Write to a temporary file and rename it, so a reader never sees half a cache."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            torch.save(payload, file)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def decode_image_files(
    paths: Sequence[str], *, description: str, channels: int | None = None
) -> torch.Tensor:
    """Decode image files of one size into a uint8 tensor [N, C, H, W], with a progress bar.

    The first image fixes the size and, unless ``channels`` is given, the channel count (grey
    images stay 1 channel, colour ones 3). Threads decode chunks in parallel: torchvision's
    decoders release the GIL.

    Raises:
        MixedImageSizes: an image differs in size from the first.
    """
    from torchvision.io import ImageReadMode, decode_image, read_file

    if not paths:
        raise DatasetError(f"no images to decode for {description}")
    first = decode_image(read_file(paths[0]))
    if channels is None:
        channels = 1 if first.shape[0] == 1 else 3
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    height, width = first.shape[-2:]
    images = torch.empty((len(paths), channels, height, width), dtype=torch.uint8)

    def decode_chunk(start: int) -> int:
        stop = min(start + _DECODE_CHUNK, len(paths))
        for index in range(start, stop):
            image = decode_image(read_file(paths[index]), mode=mode)
            if image.shape[-2:] != (height, width):
                raise MixedImageSizes(
                    f"{paths[index]} is {tuple(image.shape[-2:])}, "
                    f"not {(height, width)} like {paths[0]}"
                )
            images[index] = image
        return stop - start

    progress = Progress(
        TextColumn("decoding {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    workers = min(8, os.cpu_count() or 1)
    with progress, ThreadPoolExecutor(workers) as pool:
        task = progress.add_task(description, total=len(paths))
        for done in pool.map(decode_chunk, range(0, len(paths), _DECODE_CHUNK)):
            progress.advance(task, done)
    return images
