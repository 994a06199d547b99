"""Loaders: batches are a pure function of (seed, epoch, step), resumable, shardable, correct."""

from __future__ import annotations

import itertools

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from data_files import numbered_dataset as numbered_images
from torchvision.io import write_png

from cnnlab.data import DatasetSplits, FolderImages, load_dataset, make_loader
from cnnlab.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def numbered_dataset(count: int = 50, augment: str = "crop+flip") -> DatasetSplits:
    """Random 3x8x8 images whose label is their index, so every batch says what it holds."""
    return numbered_images(count, augment, size=8, mean=MEAN, std=STD, crop_padding=2)


def batches(loader, epoch=0, start_step=0):
    return [(x.clone(), y.clone()) for x, y in loader.epoch(epoch, start_step)]


def test_steps_per_epoch_and_drop_last():
    dataset = numbered_dataset(50)
    train = make_loader("train", dataset, batch_size=8, train=True)
    test = make_loader("test", dataset, batch_size=8, train=False)
    assert (len(train), len(test)) == (6, 7)
    assert [len(y) for _, y in test.epoch(0)] == [8] * 6 + [2]
    labels = torch.cat([y for _, y in train.epoch(0)])
    assert len(labels) == 48 and len(set(labels.tolist())) == 48  # a permutation, minus 2


def test_test_loader_is_ordered_and_normalised_like_torchvision():
    dataset = numbered_dataset(20)
    test = make_loader("test", dataset, batch_size=6, train=False)
    images = torch.cat([x for x, _ in test.epoch(3)])
    labels = torch.cat([y for _, y in test.epoch(3)])
    assert labels.tolist() == list(range(20))
    expected = TF.normalize(dataset.test.images.float() / 255, MEAN, STD)
    assert torch.allclose(images, expected, atol=1e-5)


def test_every_training_image_is_a_padded_crop_and_flip_of_its_source():
    dataset = numbered_dataset(24)
    loader = make_loader("train", dataset, batch_size=8, train=True, seed=5)
    flips_seen, offsets_seen = set(), set()
    for images, labels in loader.epoch(0):
        for image, label in zip(images, labels.tolist(), strict=True):
            source = TF.pad(dataset.train.images[label], [2], fill=0)
            found = []
            for top, left, flip in itertools.product(range(5), range(5), (False, True)):
                candidate = TF.crop(source, top, left, 8, 8)
                candidate = TF.horizontal_flip(candidate) if flip else candidate
                expected = TF.normalize(candidate.float() / 255, MEAN, STD)
                if torch.allclose(image, expected, atol=1e-5):
                    found.append((top, left, flip))
            assert found, f"image {label} is no crop/flip of its source"
            flips_seen.update(f for _, _, f in found)
            offsets_seen.update((t, l) for t, l, _ in found)
    assert flips_seen == {False, True} and len(offsets_seen) > 5


def test_same_seed_epoch_step_same_batch_else_different():
    dataset = numbered_dataset(40)
    first = batches(make_loader("train", dataset, batch_size=8, train=True, seed=3), epoch=2)
    again = batches(make_loader("train", dataset, batch_size=8, train=True, seed=3), epoch=2)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other_epoch = batches(make_loader("train", dataset, batch_size=8, train=True, seed=3), 3)
    other_seed = batches(make_loader("train", dataset, batch_size=8, train=True, seed=4), 2)
    assert not torch.equal(first[0][1], other_epoch[0][1])
    assert not torch.equal(first[0][1], other_seed[0][1])


@pytest.mark.parametrize("start_step", [0, 1, 3, 5])
def test_resume_mid_epoch_gives_the_remaining_batches(start_step):
    dataset = numbered_dataset(50)
    loader = make_loader("train", dataset, batch_size=8, train=True, seed=1)
    full = batches(loader, epoch=4)
    resumed = batches(loader, epoch=4, start_step=start_step)
    assert len(resumed) == len(full) - start_step
    for (x1, y1), (x2, y2) in zip(full[start_step:], resumed, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_bad_start_step_and_batch_size():
    dataset = numbered_dataset(10)
    loader = make_loader("train", dataset, batch_size=4, train=True)
    with pytest.raises(ConfigError, match="start_step"):
        next(loader.epoch(0, start_step=3))
    with pytest.raises(ConfigError, match="smaller --batch-size"):
        make_loader("train", dataset, batch_size=64, train=True)
    with pytest.raises(ConfigError, match="crop\\+flip"):
        make_loader("train", dataset, batch_size=4, train=True, augment="vgg")


@pytest.mark.parametrize(("count", "world_size"), [(50, 3), (48, 4), (7, 2)])
def test_ddp_shards_are_disjoint_and_complete_for_evaluation(count, world_size):
    dataset = numbered_dataset(count)
    shards = [
        torch.cat(
            [
                y
                for _, y in make_loader(
                    "test", dataset, batch_size=4, train=False, rank=r, world_size=world_size
                ).epoch(0)
            ]
        ).tolist()
        for r in range(world_size)
    ]
    together = sorted(itertools.chain(*shards))
    assert together == list(range(count))  # every sample once, none twice


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_training_shards_equal_one_process_with_a_larger_batch(world_size):
    """At every step the ranks together hold exactly the images, augmented identically, of a
    single process whose batch is world_size times larger."""
    dataset = numbered_dataset(50)
    single = batches(
        make_loader("train", dataset, batch_size=4 * world_size, train=True, seed=9), 1
    )
    ranks = [
        batches(
            make_loader(
                "train", dataset, batch_size=4, train=True, seed=9, rank=r, world_size=world_size
            ),
            1,
        )
        for r in range(world_size)
    ]
    assert all(len(r) == len(single) for r in ranks)  # equal steps on every rank
    seen = []
    for step, (images, labels) in enumerate(single):
        rank_labels = [ranks[r][step][1] for r in range(world_size)]
        assert sorted(torch.cat(rank_labels).tolist()) == sorted(labels.tolist())
        for r in range(world_size):
            for image, label in zip(*ranks[r][step], strict=True):
                assert torch.equal(image, images[labels == label][0])
        seen += labels.tolist()
    assert len(seen) == len(set(seen)) == (50 // (4 * world_size)) * 4 * world_size


def test_channels_last_and_resize_to_model_input():
    digits = load_dataset("digits")
    loader = make_loader(
        "test", digits, batch_size=16, train=False, input_size=(3, 64, 64), channels_last=True
    )
    images, labels = next(loader.epoch(0))
    assert images.shape == (16, 3, 64, 64)
    assert images.is_contiguous(memory_format=torch.channels_last)
    grey = TF.normalize(digits.test.images[:16].float() / 255, digits.mean, digits.std)
    expected = TF.resize(grey, [64, 64], interpolation=TF.InterpolationMode.BILINEAR)
    assert torch.allclose(images[:, 1:2], expected, atol=1e-4)
    assert torch.equal(labels, digits.test.labels[:16])


def test_digits_default_augmentation_never_flips():
    digits = load_dataset("digits")
    loader = make_loader("train", digits, batch_size=64, train=True)
    assert loader.augment.flip is False and loader.augment.crop_padding == 2


# ---------------------------------------------------------------------- image folder loader


@pytest.fixture
def large_image_tree(tmp_path):
    """Images too large to decode into memory: load_dataset returns FolderImages."""
    colours = {"blue": (0, 0, 255), "red": (255, 0, 0)}
    for split in ("train", "val"):
        for name, colour in colours.items():
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for index in range(5):
                size = (70 + 10 * index, 90)
                image = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).expand(3, *size)
                write_png(image.contiguous(), str(folder / f"{index}.png"))
    return tmp_path


def test_folder_loader_yields_normalised_batches(large_image_tree):
    dataset = load_dataset(f"folder:{large_image_tree}")
    assert isinstance(dataset.train, FolderImages)
    test = make_loader(
        "test", dataset, batch_size=4, train=False, input_size=(3, 32, 32), num_workers=0
    )
    assert len(test) == 3
    images, labels = next(test.epoch(0))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [0, 0, 0, 0]  # 'blue' sorts first
    blue = torch.tensor([(0 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    assert torch.allclose(images.mean(dim=(0, 2, 3)), blue, atol=1e-4)


def test_folder_loader_deterministic_resumable_and_worker_independent(large_image_tree):
    dataset = load_dataset(f"folder:{large_image_tree}")

    def loader(workers):
        return make_loader(
            "train",
            dataset,
            batch_size=3,
            train=True,
            augment="alexnet",
            seed=2,
            input_size=(3, 24, 24),
            num_workers=workers,
        )

    full = batches(loader(0), epoch=1)
    assert len(full) == 3 and full[0][0].shape == (3, 3, 24, 24)
    with_workers = batches(loader(2), epoch=1)
    resumed = batches(loader(0), epoch=1, start_step=1)
    for (x1, y1), (x2, y2) in zip(full, with_workers, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    for (x1, y1), (x2, y2) in zip(full[1:], resumed, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other_epoch = batches(loader(0), epoch=2)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(full, other_epoch, strict=True))


def test_cpu_batches_leave_the_thread_count_as_they_found_it():
    threads = torch.get_num_threads()
    loader = make_loader("train", numbered_dataset(40), batch_size=8, train=True)
    batches_seen = 0
    for _ in loader.epoch(0):
        assert torch.get_num_threads() == threads  # the model's step runs with all threads
        batches_seen += 1
    assert batches_seen == 5 and torch.get_num_threads() == threads
