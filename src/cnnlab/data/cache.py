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

CACHE_FORMAT = 2  # 2: records the files skipped as unreadable
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
            split = TensorImages(stored["images"], stored["labels"], list(stored["skipped"]))
            return split, list(stored["classes"])
    split, classes = decode()
    payload = {
        "format": CACHE_FORMAT,
        "signature": signature,
        "images": split.images.contiguous(),
        "labels": split.labels,
        "classes": list(classes),
        "skipped": list(split.skipped),
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


class UnreadableImage(DatasetError):
    """An image file that cannot be decoded (truncated, or not an image despite its name)."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(
            f"cannot decode the image {path} ({reason}); delete or replace it, or pass "
            "--skip-bad-images to leave unreadable files out"
        )

    def __reduce__(self):  # DataLoader workers hand it to the main process pickled
        return type(self), (self.path, self.reason)


def decode_image_file(path: str, mode=None) -> torch.Tensor:
    """Decode one image file to uint8 [C, H, W].

    Raises:
        UnreadableImage: the file is truncated, unreadable or not an image; the message names it
            (torchvision's own error does not).
    """
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        return decode_image(read_file(path), mode=mode or ImageReadMode.UNCHANGED)
    except (RuntimeError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else "unreadable"
        raise UnreadableImage(path, reason) from error


def decode_image_files(
    paths: Sequence[str],
    *,
    description: str,
    channels: int | None = None,
    skip_bad: bool = False,
) -> tuple[torch.Tensor, list[int]]:
    """Decode image files of one size into a uint8 tensor [N, C, H, W], with a progress bar.

    The first readable image fixes the size and, unless ``channels`` is given, the channel
    count (grey images stay 1 channel, colour ones 3). Threads decode chunks in parallel:
    torchvision's decoders release the GIL.

    Returns:
        The images and the indices (into ``paths``) of the files left out as unreadable, which
        is empty unless ``skip_bad``; the tensor holds only the readable ones, in order.

    Raises:
        MixedImageSizes: an image differs in size from the first.
        UnreadableImage: a file cannot be decoded and ``skip_bad`` is False.
    """
    from torchvision.io import ImageReadMode

    if not paths:
        raise DatasetError(f"no images to decode for {description}")
    bad: list[int] = []
    first = None
    for index, path in enumerate(paths):
        try:
            first = decode_image_file(path)
            break
        except UnreadableImage:
            if not skip_bad:
                raise
            bad.append(index)
    if first is None:
        raise DatasetError(f"none of the {len(paths)} images of {description} can be decoded")
    if channels is None:
        channels = 1 if first.shape[0] == 1 else 3
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    height, width = first.shape[-2:]
    images = torch.empty((len(paths), channels, height, width), dtype=torch.uint8)
    readable = torch.ones(len(paths), dtype=torch.bool)
    readable[bad] = False

    def decode_chunk(start: int) -> int:
        stop = min(start + _DECODE_CHUNK, len(paths))
        for index in range(max(start, len(bad)), stop):
            try:
                image = decode_image_file(paths[index], mode)
            except UnreadableImage:
                if not skip_bad:
                    raise
                readable[index] = False
                continue
            if image.shape[-2:] != (height, width):
                raise MixedImageSizes(
                    f"{paths[index]} is {tuple(image.shape[-2:])}, "
                    f"not {(height, width)} like {paths[len(bad)]}"
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
    if bool(readable.all()):
        return images, []
    return images[readable], (~readable).nonzero().flatten().tolist()
