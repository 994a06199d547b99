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


def test_alternating_flip_and_jitter_resume_mid_epoch():
    dataset = numbered(48, "translate2+altflip+jitter")
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
    for bad in ("translatex", "crop+translate2", "spin", "jitterx", "jitter+jitter5"):
        with pytest.raises(ConfigError, match="translateN"):
            BatchAugment.from_name(bad, dataset_default="none", crop_padding=4)


def test_jitter_names_give_their_percentage_and_out_of_range_ones_say_the_range():
    def parse(name: str) -> BatchAugment:
        return BatchAugment.from_name(name, dataset_default="none", crop_padding=4)

    assert parse("translate2+altflip+jitter") == BatchAugment(2, True, "reflect", True, 0.15)
    assert parse("jitter30").jitter == pytest.approx(0.30)
    assert parse("jitter30").active and not parse("none").active
    for bad in ("jitter0", "jitter100"):
        with pytest.raises(ConfigError, match="from 1 to 99"):
            parse(bad)


def affine_fit(image: torch.Tensor, plain: torch.Tensor) -> tuple[float, float, float]:
    """Least-squares ``image = c * plain + d`` over all pixels: (c, d, largest residual)."""
    x, y = plain.flatten().double(), image.flatten().double()
    design = torch.stack([x, torch.ones_like(x)], 1)
    solution = torch.linalg.lstsq(design, y[:, None]).solution
    residual = (design @ solution - y[:, None]).abs().max()
    c, d = solution.flatten().tolist()
    return c, d, float(residual)


def test_jitter_shifts_and_scales_each_image_within_its_range_on_the_same_windows():
    """With jitter20 every training image is (x + b) * c of the image the same seed serves
    without it (same translation and flip), with |b| <= 0.2 and 0.8 <= c <= 1.2 drawn per image;
    the test split is served as stored."""
    jittered = numbered(40, "translate2+altflip+jitter20")
    plain = numbered(40, "translate2+altflip")
    loaders = [make_loader("train", d, batch_size=8, train=True, seed=2) for d in (jittered, plain)]
    factors, shifts = [], []
    for (batch, labels), (reference, same_labels) in zip(
        loaders[0].epoch(1), loaders[1].epoch(1), strict=True
    ):
        assert torch.equal(labels, same_labels)
        for image, source in zip(batch, reference, strict=True):
            c, d, residual = affine_fit(image, source)
            assert residual < 1e-3 * source.abs().max()
            assert 0.8 - 1e-6 <= c <= 1.2 + 1e-6 and abs(d / c) <= 0.2 + 1e-6
            factors.append(c)
            shifts.append(d / c)
    assert max(factors) - min(factors) > 0.2 and max(shifts) - min(shifts) > 0.2  # drawn per image
    test = make_loader("test", jittered, batch_size=8, train=False)
    for batch, labels in test.epoch(0):
        assert torch.equal(batch, jittered.test.images[labels].float())


def windows_of(image: np.ndarray, padded: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Every (top, left) at which ``image`` is the ``size`` x ``size`` window of ``padded``."""
    span = padded.shape[-1] - size + 1
    return [
        (top, left)
        for top in range(span)
        for left in range(span)
        if np.array_equal(image, padded[:, top : top + size, left : left + size])
    ]


def test_small_crop_epochs_cut_windows_of_the_padded_image_then_serve_whole_images():
    dataset = numbered(60, "translate2")
    loader = make_loader(
        "train", dataset, batch_size=10, train=True, seed=0, small_crop=4, small_crop_epochs=2
    )
    offsets = set()
    for epoch in (0, 1):
        for batch, labels in loader.epoch(epoch):
            assert batch.shape[-2:] == (4, 4)
            for image, label in zip(batch, labels.tolist(), strict=True):
                source = dataset.train.images[label].numpy()
                padded = np.pad(source, ((0, 0), (2, 2), (2, 2)), "reflect")  # 10 x 10
                found = windows_of(image.numpy(), padded, 4)
                assert found, f"image {label} is no 4x4 window of its reflect-padded source"
                offsets.update(found)
    assert len(offsets) > 35  # the windows move over all 7 x 7 positions of the 10-pixel image
    assert {top for top, _ in offsets} == set(range(7))
    whole = [batch for batch, _ in loader.epoch(2)]
    assert all(batch.shape[-2:] == (6, 6) for batch in whole)
    test_loader = make_loader(
        "test", dataset, batch_size=10, train=False, small_crop=4, small_crop_epochs=2
    )
    assert all(batch.shape[-2:] == (6, 6) for batch, _ in test_loader.epoch(0))  # never cropped


def test_small_crop_without_translation_stays_inside_the_image_and_resumes_alike():
    dataset = numbered(30, "none")
    options = dict(batch_size=6, train=True, seed=5, small_crop=3, small_crop_epochs=1)
    loader = make_loader("train", dataset, **options)
    full = [x.clone() for x, _ in loader.epoch(0)]
    for batch, labels in zip(full, [y for _, y in loader.epoch(0)], strict=True):
        for image, label in zip(batch, labels.tolist(), strict=True):
            assert windows_of(image.numpy(), dataset.train.images[label].numpy(), 3)
    resumed = [x for x, _ in make_loader("train", dataset, **options).epoch(0, start_step=3)]
    assert all(torch.equal(a, b) for a, b in zip(full[3:], resumed, strict=True))


def test_without_small_crop_the_random_draws_are_those_of_before():
    """Runs without --small-crop keep their batches bit for bit: the same draws as one
    ``randint`` of every shift inside the padding, then the flips."""
    augment = BatchAugment.from_name("translate2+altflip", dataset_default="none", crop_padding=4)
    drawn = augment.sample(16, torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(7)
    offsets = torch.randint(0, 5, (16, 2), generator=generator)
    flips = torch.randint(0, 2, (16, 1), generator=generator)
    assert torch.equal(drawn, torch.cat([offsets, flips], 1))


def test_a_small_crop_the_images_cannot_give_says_why():
    dataset = numbered(20, "translate2")
    with pytest.raises(ConfigError, match="does not fit the 6x6 images; pick a size from 1 to 6"):
        make_loader("train", dataset, batch_size=5, train=True, small_crop=7, small_crop_epochs=1)
    with pytest.raises(ConfigError, match="--input-size"):
        make_loader(
            "train", dataset, batch_size=5, train=True, small_crop=4, small_crop_epochs=1,
            input_size=(3, 8, 8),
        )  # fmt: skip
