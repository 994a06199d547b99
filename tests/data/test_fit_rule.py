"""Fitting the data to a model: keep, pad (LeNet-5's MNIST, centred) or resize (AlexNet's CIFAR)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
import yaml
from data_files import write_mnist

from cnnlab.cli import main
from cnnlab.data import load_dataset, make_loader
from cnnlab.data.augment import Normalize, describe_fit, fit_input_size, fit_method
from cnnlab.evaluation import evaluate


@pytest.mark.parametrize(
    ("have", "want", "method"),
    [
        ((28, 28), (28, 28), "keep"),
        ((28, 28), (32, 32), "pad"),  # LeNet-5 on MNIST, 2 pixels a side
        ((24, 24), (32, 32), "pad"),  # 4 a side: the limit
        ((23, 23), (32, 32), "resize"),
        ((32, 32), (227, 227), "resize"),  # AlexNet on CIFAR
        ((64, 64), (32, 32), "resize"),  # larger images are shrunk
        ((28, 40), (32, 32), "resize"),  # one side larger: no padding can fit it
    ],
)
def test_fit_method_pads_only_a_few_pixels(have, want, method):
    assert fit_method(have, want) == method
    assert describe_fit(have, want).startswith(
        {"keep": "images kept", "pad": "images padded", "resize": "images resized"}[method]
    )


def test_padding_is_centred_and_black_after_normalisation():
    """Padding the normalised batch with the value of black equals padding the raw pixels
    with zeros (torchvision) and normalising afterwards."""
    generator = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8, generator=generator)
    normalize = Normalize([0.1307], [0.3081])
    padded = fit_input_size(normalize(raw), (1, 32, 32), fill=normalize.shift)
    expected = TF.normalize(TF.pad(raw, [2, 2, 2, 2]).float() / 255, [0.1307], [0.3081])
    assert padded.shape == (3, 1, 32, 32)
    torch.testing.assert_close(padded, expected)
    odd = fit_input_size(torch.ones(1, 3, 29, 30), (3, 32, 32))  # uneven: the extra row below
    torch.testing.assert_close(odd, TF.pad(torch.ones(1, 3, 29, 30), [1, 1, 1, 2]))


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (32, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (16, 28, 28), dtype=np.uint8)
    write_mnist(tmp_path, train, np.arange(32) % 10, test, np.arange(16) % 10)
    return tmp_path


@pytest.mark.parametrize("model", ["lenet5", "lenet5_modern"])
def test_lenet5_trains_on_mnist_with_no_size_flag(tiny_mnist, tmp_path, capsys, model):
    run = tmp_path / f"run-{model}"
    argv = ["train", model, "--data", "mnist", "--data-dir", str(tiny_mnist), "--epochs", "1"]
    assert main([*argv, "--batch-size", "8", "--threads", "1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "images padded (centred) from 28x28 to 32x32" in out
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["input_size"] == [1, 32, 32]
    result = evaluate(run, data_dir=str(tiny_mnist), device="cpu")
    assert result.images == 16  # evaluation reads the size from the run and pads alike


def test_loader_serves_the_paper_padding(tiny_mnist):
    mnist = load_dataset("mnist", data_dir=tiny_mnist, download=False)
    loader = make_loader(
        "test", mnist, batch_size=16, train=False, device="cpu", input_size=(1, 32, 32)
    )
    images, _ = next(iter(loader.epoch(0)))
    raw = mnist.test.images
    expected = TF.normalize(TF.pad(raw, [2, 2, 2, 2]).float() / 255, mnist.mean, mnist.std)
    torch.testing.assert_close(images, expected)


def test_far_smaller_images_are_resized_and_a_model_that_fits_keeps_them(tmp_path, capsys):
    rng = np.random.default_rng(1)
    small = tmp_path / "small"
    images = rng.integers(0, 256, (40, 20, 20), dtype=np.uint8)  # 6 pixels a side short of 32
    write_mnist(small, images[:32], np.arange(32) % 10, images[32:], np.arange(8))
    common = ["--data", "mnist", "--data-dir", str(small), "--epochs", "1", "--batch-size", "8"]
    assert main(["train", "lenet5", *common, "--out", str(tmp_path / "lenet")]) == 0
    assert "images resized (bilinear) from 20x20 to 32x32" in capsys.readouterr().out
    config = yaml.safe_load((tmp_path / "lenet" / "config.yaml").read_text())
    assert config["input_size"] == [1, 32, 32]
    assert main(["train", "resnet20", *common, "--out", str(tmp_path / "resnet")]) == 0
    out = capsys.readouterr().out
    assert "images padded" not in out and "images resized" not in out  # global pooling: kept
    config = yaml.safe_load((tmp_path / "resnet" / "config.yaml").read_text())
    assert config["input_size"] is None


def test_lr_find_fits_mnist_to_lenet5_as_train_does(tiny_mnist, tmp_path, capsys):
    from cnnlab.viz.lr_find import lr_find

    result = lr_find("lenet5", "mnist", data_dir=str(tiny_mnist), batch_size=8, steps=5)
    assert len(result.lrs) == 5 and np.isfinite(result.losses).all()
    argv = ["lr-find", "lenet5", "--data", "mnist", "--data-dir", str(tiny_mnist)]
    assert (
        main([*argv, "--steps", "5", "--batch-size", "8", "--out", str(tmp_path / "lr.png")]) == 0
    )


def test_a_recipes_folder_only_augmentation_gives_way_on_a_small_in_memory_folder(tmp_path, capsys):
    """resnet18's default recipe is ImageNet's, whose scale jitter reads images from disk as
    it trains; a small folder is held in memory, so it trains with the dataset's default."""
    from data_files import write_image_folder

    generator = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        images = torch.randint(0, 256, (8, 3, 40, 48), dtype=torch.uint8, generator=generator)
        write_image_folder(tmp_path / "small" / split, images, torch.arange(8) % 2, ["cat", "dog"])
    run = tmp_path / "run"
    common = ["--data", f"folder:{tmp_path / 'small'}", "--epochs", "1", "--batch-size", "4"]
    assert main(["train", "resnet18", *common, "--threads", "1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert (
        "recipe resnet2016_imagenet's augmentation 'resnet' needs images read from a folder" in out
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["augment"] == "default"
    # another folder-only augmentation, asked for by name, is refused in one line
    argv = ["train", "resnet18", *common, "--augment", "vgg", "--out", str(tmp_path / "r2")]
    assert main(argv) == 2
    assert "unknown augmentation 'vgg' for an in-memory dataset" in capsys.readouterr().err
