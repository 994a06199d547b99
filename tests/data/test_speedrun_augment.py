"""Random translation with reflect padding and alternating flips (Jordan 2024)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_files import numbered_dataset

from cnnlab.data import DatasetSplits, make_loader
from cnnlab.data.augment import BatchAugment
from cnnlab.errors import ConfigError

MEAN, STD = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)  # normalised values = pixel values


def numbered(count: int, augment: str) -> DatasetSplits:
    return numbered_dataset(count, augment, size=6, mean=MEAN, std=STD, crop_padding=4)


def flips_by_image(loader, epoch: int, images: torch.Tensor) -> dict[int, bool]:
    """For each image served in ``epoch``: was it mirrored?"""
    seen = {}
    for batch, labels in loader.epoch(epoch):
        for image, label in zip(batch, labels.tolist(), strict=True):
            source = images[label].float()
            if torch.equal(image, source):
                seen[label] = False
            else:
                assert torch.equal(image, source.flip(-1)), "neither the image nor its mirror"
                seen[label] = True
    return seen


def test_alternating_flip_mirrors_the_other_half_every_other_epoch():
    dataset = numbered(64, "altflip")
    loader = make_loader("train", dataset, batch_size=16, train=True, seed=3)
    epochs = [flips_by_image(loader, e, dataset.train.images) for e in range(4)]
    assert all(len(flips) == 64 for flips in epochs)
    first = epochs[0]
    assert 16 < sum(first.values()) < 48  # a random half, roughly
    for epoch, flips in enumerate(epochs):
        expected = {i: f != bool(epoch % 2) for i, f in first.items()}
        assert flips == expected
    # another seed draws another first epoch
    other = make_loader("train", dataset, batch_size=16, train=True, seed=4)
    assert flips_by_image(other, 0, dataset.train.images) != first


def test_alternating_flip_resumes_mid_epoch():
    dataset = numbered(48, "translate2+altflip")
    loader = make_loader("train", dataset, batch_size=8, train=True, seed=1)
    full = [x.clone() for x, _ in loader.epoch(3)]
    resumed = [x.clone() for x, _ in loader.epoch(3, start_step=2)]
    assert all(torch.equal(a, b) for a, b in zip(full[2:], resumed, strict=True))


def test_translation_is_a_window_of_the_reflect_padded_image():
    dataset = numbered(40, "translate2")
    loader = make_loader("train", dataset, batch_size=8, train=True, seed=0)
    offsets = set()
    for batch, labels in loader.epoch(0):
        for image, label in zip(batch, labels.tolist(), strict=True):
            source = dataset.train.images[label].numpy()
            padded = np.pad(source, ((0, 0), (2, 2), (2, 2)), "reflect")
            found = [
                (top, left)
                for top in range(5)
                for left in range(5)
                if np.array_equal(image.numpy(), padded[:, top : top + 6, left : left + 6])
            ]
            assert found, f"image {label} is no reflect-padded translation of its source"
            offsets.update(found)
    assert len(offsets) > 15  # the offsets vary over the whole 5x5 range


def test_names_parse_and_bad_ones_say_what_is_accepted():
    augment = BatchAugment.from_name("translate3+altflip", dataset_default="none", crop_padding=4)
    assert augment == BatchAugment(3, True, "reflect", True)
    assert BatchAugment.from_name("translate", dataset_default="none", crop_padding=4) == (
        BatchAugment(2, False, "reflect", False)
    )
    for bad in ("translatex", "crop+translate2", "spin"):
        with pytest.raises(ConfigError, match="translateN"):
            BatchAugment.from_name(bad, dataset_default="none", crop_padding=4)
