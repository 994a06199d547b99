"""Loaders that yield normalised batches whose order and augmentation depend only on
(seed, epoch, step), so a run resumed mid-epoch sees exactly the batches it would have seen.

``BatchLoader`` serves in-memory datasets: the uint8 images live on the training device and
every batch is gathered, augmented and normalised there with a few tensor ops.
``FolderLoader`` serves image folders too large for memory through DataLoader workers.

Sharding for DistributedDataParallel is strided: rank r takes positions r, r + W, r + 2W, ...
of the epoch's permutation, so at every step the ranks together see exactly the samples (and
augmentations) a single process with a W times larger batch would see.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np
import torch

from cnnlab.data.augment import BatchAugment, Normalize, alternating_flips, fit_input_size
from cnnlab.data.cache import UnreadableImage, decode_image_file
from cnnlab.data.splits import DatasetSplits, FolderImages, TensorImages
from cnnlab.errors import ConfigError


def mixed_seed(*parts: int) -> int:
    """A 64-bit seed mixing ``parts`` (e.g. seed, epoch, step) so that nearby tuples differ."""
    entropy = [int(p) % 2**32 for p in parts]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded by ``mixed_seed(*parts)``."""
    return torch.Generator().manual_seed(mixed_seed(*parts))


@dataclass(eq=False)
class _Sharding:
    """The epoch's sample order and this rank's share of it."""

    num_samples: int
    _: KW_ONLY
    batch_size: int
    shuffle: bool
    seed: int
    rank: int
    world_size: int
    drop_last: bool
    rank_samples: int = field(init=False)
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        batch_size, rank, world_size = self.batch_size, self.rank, self.world_size
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in 0..world_size-1 (world_size={world_size})")
        if self.drop_last:
            self.rank_samples = self.num_samples // world_size
            self.steps = self.rank_samples // batch_size
        else:
            self.rank_samples = len(range(rank, self.num_samples, world_size))
            self.steps = math.ceil(self.rank_samples / batch_size)
        if self.steps == 0:
            raise ConfigError(
                f"{self.num_samples} samples make no batch of {batch_size} per rank "
                f"(world_size={world_size}); use a smaller --batch-size"
            )

    def rank_order(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for ``epoch``, in the order they are served."""
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=seeded_generator(self.seed, epoch))
        else:
            order = torch.arange(self.num_samples)
        return order[self.rank :: self.world_size][: self.rank_samples]

    def check_start(self, start_step: int) -> None:
        if not 0 <= start_step <= self.steps:
            raise ConfigError(f"start_step {start_step} is outside 0..{self.steps}")

    def batch_slice(self, step: int) -> slice:
        return slice(step * self.batch_size, min((step + 1) * self.batch_size, self.rank_samples))


class _ShardedLoader:
    """What both loaders share: an epoch is this rank's share of a seeded sample order, cut
    into ``len(loader)`` batches of ``batch_size`` (``make_loader`` builds the sharding)."""

    def __init__(self, sharding: _Sharding, device: torch.device | str, channels_last: bool):
        self.sharding = sharding
        self.seed = sharding.seed
        self.device = torch.device(device)
        self.channels_last = channels_last

    def __len__(self) -> int:
        return self.sharding.steps

    @property
    def batch_size(self) -> int:
        return self.sharding.batch_size


class BatchLoader(_ShardedLoader):
    """Batches of an in-memory split, augmented and normalised on the training device.

    ``loader.epoch(epoch, start_step)`` yields ``(images, labels)``: float32 [B, C, H, W]
    normalised images and int64 [B] labels, both on ``device``. ``len(loader)`` is the number
    of steps per epoch.
    """

    def __init__(
        self,
        data: TensorImages,
        sharding: _Sharding,
        *,
        train: bool,
        device: torch.device | str,
        augment: BatchAugment,
        mean: Sequence[float],
        std: Sequence[float],
        channels_last: bool = False,
        input_size: Sequence[int] | None = None,
        small_crop: int | None = None,
        small_crop_epochs: int = 0,
    ) -> None:
        super().__init__(sharding, device, channels_last)
        self.train = train
        self.small_crop = small_crop if train else None
        self.small_crop_epochs = small_crop_epochs
        self.augment = augment if train else BatchAugment()
        self.source = self.augment.prepare(data.images.to(self.device))
        self.labels = data.labels.to(self.device)
        self.first_flips = None
        if self.augment.alternate_flip:  # each image's flip in epoch 0, a pure function of seed
            first = torch.randint(0, 2, (len(data),), generator=seeded_generator(self.seed, -1))
            self.first_flips = first.to(self.device)
        self.normalize = Normalize(mean, std, self.device)
        self.input_size = tuple(input_size) if input_size is not None else None

    def crop(self, epoch: int) -> int | None:
        """The side of the windows cut in ``epoch``: ``small_crop`` in the first
        ``small_crop_epochs`` epochs, else None (the stored size)."""
        return self.small_crop if epoch < self.small_crop_epochs else None

    def _augment_params(
        self, epoch: int, start_step: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Random parameters of every remaining step of the epoch, drawn on the CPU and moved
        to the device in one copy, so no step waits on a host-to-device transfer: the crops and
        flips (:meth:`BatchAugment.sample`) and the brightness and contrast jitter
        (:meth:`BatchAugment.sample_jitter`, None without it).

        Each step's parameters come from a generator seeded by (seed, epoch, step) and are drawn
        for the global batch of all ranks, of which this rank takes its strided share.
        """
        crop = self.crop(epoch)
        if not (self.augment.active or crop):
            return None, None
        positions = None
        if crop:
            positions = (self.source.shape[-2] - crop + 1, self.source.shape[-1] - crop + 1)
        sharding = self.sharding
        global_batch = sharding.batch_size * sharding.world_size
        shares = slice(sharding.rank, None, sharding.world_size)
        params, jitters = [], []
        for step in range(start_step, sharding.steps):
            generator = seeded_generator(self.seed, epoch, step)
            params.append(self.augment.sample(global_batch, generator, positions)[shares])
            jitter = self.augment.sample_jitter(global_batch, generator)
            if jitter is not None:
                jitters.append(jitter[shares])
        jitter = torch.cat(jitters).to(self.device) if jitters else None
        return torch.cat(params).to(self.device), jitter

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from ``start_step`` on."""
        sharding = self.sharding
        sharding.check_start(start_step)
        with self._batch_threads():
            order = sharding.rank_order(epoch).to(self.device)
            params, jitter = self._augment_params(epoch, start_step)
            if self.first_flips is not None:
                first = start_step * sharding.batch_size
                served = order[first : first + len(params)]
                params[: len(served), 2] = alternating_flips(self.first_flips, served, epoch)
        crop = self.crop(epoch)
        for step in range(start_step, sharding.steps):
            with self._batch_threads():
                indices = order[sharding.batch_slice(step)]
                step_params = step_jitter = None
                if params is not None:
                    first = (step - start_step) * sharding.batch_size
                    step_params = params[first : first + len(indices)]
                    if jitter is not None:
                        step_jitter = jitter[first : first + len(indices)]
                images = self._model_input(
                    self.augment.gather(self.source, indices, step_params, crop), crop, step_jitter
                )
                labels = self.labels.index_select(0, indices)
            yield images, labels

    @contextmanager
    def _batch_threads(self) -> Iterator[None]:
        """On the CPU, build batches on one thread and give the model its threads back after.

        A batch is too small to gain from more threads, and on a busy machine every parallel
        region waits for a descheduled thread: measured on 2 shared cores, 95 ms per CIFAR
        batch with 2 threads against 16 ms with one, the model's step time unchanged.
        """
        threads = torch.get_num_threads()
        if self.device.type != "cpu" or threads == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _model_input(
        self, images: torch.Tensor, crop: int | None = None, jitter: torch.Tensor | None = None
    ) -> torch.Tensor:
        images = self.normalize(images)
        if jitter is not None:
            images = self.augment.jitter_batch(images, jitter)
        if self.input_size is not None:  # padding is black: the normalised value of 0
            size = self.input_size if crop is None else (self.input_size[0], crop, crop)
            images = fit_input_size(images, size, fill=self.normalize.shift)
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images.contiguous()


def small_crop_problem(
    data: TensorImages | FolderImages, crop: int, input_size: Sequence[int] | None
) -> str | None:
    """Why ``data`` cannot be trained on ``crop`` x ``crop`` windows (``--small-crop``), or None.

    Args:
        data: the training split.
        crop: the windows' side.
        input_size: the model's ``(C, H, W)`` the batches are fitted to, or None.
    """
    if isinstance(data, FolderImages):
        return (
            "--small-crop works on datasets held in memory (CIFAR, MNIST, SVHN, ...), not on "
            "image folders read batch by batch; leave it out"
        )
    stored = tuple(data.images.shape[-2:])
    if not 1 <= crop <= min(stored):
        return (
            f"--small-crop {crop} does not fit the {stored[0]}x{stored[1]} images; "
            f"pick a size from 1 to {min(stored)}"
        )
    if input_size is not None and tuple(input_size[1:]) != stored:
        return (
            "--small-crop cuts the images the model takes as stored; it cannot be combined "
            "with data fitted to the model's input size (--input-size)"
        )
    return None


def make_loader(
    split: str | TensorImages | FolderImages,
    dataset: DatasetSplits,
    *,
    batch_size: int,
    train: bool,
    device: torch.device | str = "cpu",
    augment: str = "default",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool | None = None,
    channels_last: bool = False,
    input_size: Sequence[int] | None = None,
    num_workers: int | None = None,
    small_crop: int | None = None,
    small_crop_epochs: int = 0,
) -> BatchLoader | FolderLoader:
    """A loader over one split of ``dataset``.

    Args:
        split: ``"train"``, ``"test"``, or the split object itself.
        dataset: what ``load_dataset`` returned.
        batch_size: images per batch and rank.
        train: shuffle and augment (the training split) or not (evaluation).
        device: where batches are produced; in-memory images are moved there once.
        augment: ``"default"`` (the dataset's standard), ``"none"``, ``"crop"``, ``"flip"``,
            ``"crop+flip"``; image folders take ``"inception"``, ``"vgg"``, ``"alexnet"`` too.
        seed: with the epoch and step, fixes the order and augmentation of every batch.
        rank: this process's rank under DistributedDataParallel.
        world_size: number of ranks; each serves a disjoint, strided share of every epoch.
        drop_last: drop the last incomplete batch; default True when training, else False.
        channels_last: return batches in channels_last memory format.
        input_size: the model's ``(C, H, W)``; batches are resized (and 1 channel repeated to
            3) to fit it. None keeps the stored size.
        num_workers: DataLoader workers for image folders (default: CPU count, at most 8).
        small_crop: in the first ``small_crop_epochs`` epochs of training, random
            ``small_crop`` x ``small_crop`` windows of the (padded) images instead of the stored
            size: fewer pixels, so cheaper steps, early on (in-memory datasets only).
        small_crop_epochs: how many epochs use ``small_crop``.

    Returns:
        A loader with ``len(loader)`` steps per epoch and ``loader.epoch(epoch, start_step)``.
    """
    data = getattr(dataset, split) if isinstance(split, str) else split
    sharding = _Sharding(
        len(data),
        batch_size=batch_size,
        shuffle=train,
        seed=seed,
        rank=rank,
        world_size=world_size,
        drop_last=train if drop_last is None else drop_last,
    )
    both: dict[str, Any] = dict(  # what both loaders take
        train=train, device=device, channels_last=channels_last, input_size=input_size
    )
    if train and small_crop is not None and small_crop_epochs:
        problem = small_crop_problem(data, small_crop, input_size)
        if problem is not None:
            raise ConfigError(problem)
    if isinstance(data, FolderImages):
        return FolderLoader(
            data, dataset, sharding, augment=augment, num_workers=num_workers, **both
        )
    return BatchLoader(
        data,
        sharding,
        augment=BatchAugment.from_name(
            augment, dataset_default=dataset.augment, crop_padding=dataset.crop_padding
        ),
        mean=dataset.mean,
        std=dataset.std,
        small_crop=small_crop,
        small_crop_epochs=small_crop_epochs,
        **both,
    )


class _SeededImageFolder(torch.utils.data.Dataset):
    """Items are ``(epoch, index)``: the image at ``index``, augmented with the global RNG
    seeded from (seed, epoch, index), so a batch does not depend on which worker built it.

    A file that cannot be decoded comes back as ``(None, label, error)`` rather than as an
    exception: an exception raised in a worker reaches the main process wrapped in a
    many-line traceback, while the error lets the loader name the file or skip it."""

    def __init__(self, data: FolderImages, transform, seed: int) -> None:
        self.samples = data.samples
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(
        self, item: tuple[int, int]
    ) -> tuple[torch.Tensor | None, int, UnreadableImage | None]:
        from torchvision.io import ImageReadMode

        epoch, index = item
        path, label = self.samples[index]
        try:
            image = decode_image_file(path, ImageReadMode.RGB)
        except UnreadableImage as error:
            return None, label, error
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mixed_seed(self.seed, epoch, index))
            return self.transform(image), label, None


def _collate_readable(
    items: list[tuple[torch.Tensor | None, int, UnreadableImage | None]],
) -> tuple[torch.Tensor | None, torch.Tensor, list[UnreadableImage]]:
    """Stack the decoded images of a batch; list the errors of those that could not be."""
    good = [(image, label) for image, label, _ in items if image is not None]
    bad = [error for image, _, error in items if image is None]
    if not good:
        return None, torch.empty(0, dtype=torch.int64), bad
    images, labels = zip(*good, strict=True)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), bad


class FolderLoader(_ShardedLoader):
    """Batches of an image folder read by DataLoader workers (ImageNet-size data).

    Same interface as ``BatchLoader``. The epoch's order comes from (seed, epoch) and each
    image's augmentation from (seed, epoch, index); resuming at ``start_step`` hands the
    sampler only the remaining indices, so skipped batches are never read.
    """

    def __init__(
        self,
        data: FolderImages,
        dataset: DatasetSplits,
        sharding: _Sharding,
        *,
        train: bool,
        device: torch.device | str,
        augment: str = "default",
        channels_last: bool = False,
        input_size: Sequence[int] | None = None,
        num_workers: int | None = None,
    ) -> None:
        from cnnlab.data.folder_transforms import folder_transform

        super().__init__(sharding, device, channels_last)
        self.input_size = tuple(input_size) if input_size is not None else dataset.input_size
        transform = folder_transform(
            dataset.augment if augment == "default" else augment,
            train=train,
            size=self.input_size[-1],
            mean=dataset.mean,
            std=dataset.std,
        )
        self.dataset = _SeededImageFolder(data, transform, self.seed)
        self.skip_bad = data.skip_bad
        self.skipped: set[str] = set()  # unreadable files met so far (with ``skip_bad``)
        self.num_workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from ``start_step`` on.

        An unreadable image stops the epoch with an ``UnreadableImage`` naming it, unless the
        folder was loaded with ``skip_bad_images``: then its batch is one image short and the
        file is added to ``skipped``.
        """
        sharding = self.sharding
        sharding.check_start(start_step)
        remaining = sharding.rank_order(epoch)[start_step * sharding.batch_size :]
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=sharding.batch_size,
            sampler=[(epoch, int(index)) for index in remaining],
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=sharding.drop_last,
            collate_fn=_collate_readable,
        )
        for images, labels, bad in loader:
            if bad and not self.skip_bad:
                raise bad[0]
            self.skipped.update(error.path for error in bad)
            if images is None:
                continue
            images = fit_input_size(images.to(self.device, non_blocking=True), self.input_size)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, labels.to(self.device, non_blocking=True)
