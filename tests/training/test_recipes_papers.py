"""Every paper recipe against the paper: model, augmentation, optimizer and schedule.

The expected values are written here from the papers (section cited on each entry), not from
the recipes' docstrings; the augmentation is checked on the transform it builds and the
schedule on the learning rates its scheduler gives, not only on their names.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from cnnlab.data.folder_transforms import PCALighting, folder_transform
from cnnlab.models import create_model, list_models, model_entry
from cnnlab.training.config import TrainConfig, resolve_config
from cnnlab.training.recipes import (
    DIGITS_RECIPE,
    default_recipe_for,
    get_recipe,
    list_recipes,
    recipe_note,
)
from cnnlab.training.schedules import create_scheduler

IMAGENET_TRAIN = 1_281_167  # ILSVRC-2012 training images
CIFAR_TRAIN = 50_000

# recipe -> what the paper did; "schedule" is (kind, details) checked on the scheduler's rates
PAPERS = {
    # LeCun et al. 1998, section III.C: 20 passes, decreasing rates, random distortions
    # (translations among them) for 0.8%; the diagonal Levenberg-Marquardt optimizer is
    # replaced (the recipe's docstring says so)
    "lenet1998": dict(model="lenet5", augment="crop", epochs=20),
    # Krizhevsky et al. 2012: section 5 (update rule, 0.01, 0.9, 0.0005, 128, ÷10 three times,
    # ~90 cycles), section 4.1 (256x256 images, random crops and flips, PCA lighting),
    # section 3.5 / Fig. 2 (two towers, 60M parameters)
    "alexnet2012": dict(
        model="alexnet_paper",
        augment=("crops", 256, 256, 227, "lighting"),
        optimizer="alexnet",
        lr=0.01,
        momentum=0.9,
        weight_decay=0.0005,
        batch_size=128,
        epochs=90,
        schedule=("plateau", 0.1),
    ),
    # Zeiler & Fergus 2013, section 3: 224 crops of the central 256x256, flips; SGD 1e-2,
    # momentum 0.9, batch 128, annealed on plateaus, 70 epochs
    "zfnet2013": dict(
        model="zfnet",
        augment=("crops", 256, 256, 224, None),
        optimizer="momentum",
        lr=0.01,
        momentum=0.9,
        batch_size=128,
        epochs=70,
        schedule=("plateau", 0.1),
    ),
    # Simonyan & Zisserman 2015, section 3.1: batch 256, momentum 0.9, weight decay 5e-4,
    # lr 1e-2 ÷10 on plateaus, 370K iterations (74 epochs), S in [256, 512], 224 crops
    "vgg2014": dict(
        model="vgg16",
        augment=("crops", 256, 512, 224, None),
        optimizer="momentum",
        lr=0.01,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=256,
        epochs=74,
        schedule=("plateau", 0.1),
    ),
    # Szegedy et al. 2015, section 6: momentum 0.9, lr -4% every 8 epochs, Polyak averaging,
    # patches of 8%-100% of the area with aspect ratio in [3/4, 4/3]; section 5: aux x0.3
    "googlenet2014": dict(
        model="googlenet_paper",
        augment=("inception", (0.08, 1.0), (3 / 4, 4 / 3)),
        optimizer="momentum",
        momentum=0.9,
        schedule=("every", 8, 0.96),
        averaging=True,
    ),
    # He et al. 2016, section 3.4: batch 256, lr 0.1 ÷10 on plateaus, 60e4 iterations, weight
    # decay 1e-4, momentum 0.9; shorter side in [256, 480], 224 crops, flips, AlexNet lighting
    "resnet2016_imagenet": dict(
        model="resnet50",
        augment=("crops", 256, 480, 224, "lighting"),
        optimizer="momentum",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        batch_size=256,
        iterations=(600_000, IMAGENET_TRAIN),
        schedule=("plateau", 0.1),
    ),
    # He et al. 2016, section 4.2: weight decay 1e-4, momentum 0.9, batch 128, lr 0.1 ÷10 at
    # 32k and 48k iterations, 64k iterations; 4-pixel padding, 32x32 crops, flips
    "resnet2016_cifar": dict(
        model="resnet20",
        augment="crop+flip",
        optimizer="momentum",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        batch_size=128,
        iterations=(64_000, CIFAR_TRAIN),
        schedule=("iterations", [32_000, 48_000], 0.1),
    ),
    # He et al. 2016 (identity mappings), section 4 / appendix: as ResNet's CIFAR recipe, with
    # 0.01 until the training error is below 80% (~400 iterations)
    "preact2016_cifar": dict(
        model="preact_resnet110",
        augment="crop+flip",
        optimizer="momentum",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        batch_size=128,
        iterations=(64_000, CIFAR_TRAIN),
        schedule=("iterations", [32_000, 48_000], 0.1),
        warmup=(80.0, 0.1),
    ),
    # Zagoruyko & Komodakis 2016, section 4: Nesterov 0.9, lr 0.1, weight decay 5e-4, batch
    # 128, ×0.2 at epochs 60, 120, 160 of 200, dropout 0.3; flips and 4-pixel-padded crops
    "wrn2016_cifar": dict(
        model="wrn_28_10",
        augment="crop+flip",
        optimizer="nesterov",
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=128,
        epochs=200,
        schedule=("epochs", [60, 120, 160], 0.2),
        model_kwargs={"dropout": 0.3},
    ),
    # Huang et al. 2017, section 4.2: batch 64, 300 epochs, lr 0.1 ÷10 at 50% and 75%,
    # weight decay 1e-4, Nesterov 0.9; section 4.1: mirroring/shifting
    "densenet2017_cifar": dict(
        model="densenet_bc_100_12",
        augment="crop+flip",
        optimizer="nesterov",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        batch_size=64,
        epochs=300,
        schedule=("epochs", [150, 225], 0.1),
    ),
    # Howard et al. 2017, section 4 (RMSprop as Inception V3); Szegedy et al. 2016 (Inception
    # V3), section 8: RMSProp decay 0.9, epsilon 1.0, lr 0.045 decayed every two epochs by 0.94
    "mobilenet2017": dict(
        model="mobilenet_v1",
        augment=("inception", (0.08, 1.0), (3 / 4, 4 / 3)),
        optimizer="rmsprop",
        lr=0.045,
        optimizer_args={"alpha": 0.9, "eps": 1.0},
        schedule=("every", 2, 0.94),
    ),
}

#: recipes that reproduce no single paper's settings: cnnlab's own short recipes
NOT_A_PAPER = {"fast_cifar", "resnet_cifar_fast", "speedrun_cifar", DIGITS_RECIPE}


def test_every_recipe_is_checked_against_its_paper_or_is_not_a_papers():
    assert {r.name for r in list_recipes()} == set(PAPERS) | NOT_A_PAPER


def config_of(name: str, **overrides) -> TrainConfig:
    return resolve_config(get_recipe(name).model, name, **overrides)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_recipe_hyperparameters_are_the_papers(name):
    paper, config = PAPERS[name], config_of(name)
    assert get_recipe(name).model == paper["model"]
    for key in ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs"):
        if key in paper:
            assert getattr(config, key) == pytest.approx(paper[key]), key
    if "iterations" in paper:
        iterations, images = paper["iterations"]
        steps = math.ceil(images / config.batch_size) * config.epochs
        assert iterations <= steps < iterations * 1.01  # the paper's length, rounded up to epochs
    for key in ("optimizer_args", "model_kwargs"):
        if key in paper:
            assert getattr(config, key) == paper[key]
    if paper.get("averaging"):
        assert config.ema is not None and 0.99 < config.ema < 1
    if "warmup" in paper:
        assert (config.warmup_until_error, config.warmup_factor) == paper["warmup"]


def test_alexnet2012_trains_the_two_tower_paper_model_with_its_own_update_rule():
    with torch.device("meta"):
        model = create_model(get_recipe("alexnet2012").model)
    assert sum(p.numel() for p in model.parameters()) == 60_965_224  # "60 million"
    conv2 = [m for m in model.modules() if isinstance(m, nn.Conv2d)][1]
    assert tuple(conv2.weight.shape) == (256, 48, 5, 5)  # 5x5x48 kernels: two towers
    # v <- 0.9 v - 0.0005 eps w - eps g; w <- w + v, with the rate cut to 0.001 after a step
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    config = config_of("alexnet2012")
    from cnnlab.optim import create_optimizer

    optimizer = create_optimizer(config.optimizer, [w], lr=config.lr, weight_decay=5e-4)
    v, expected = torch.zeros(2, dtype=torch.float64), w.detach().clone()
    for eps in (0.01, 0.001, 0.001):
        optimizer.param_groups[0]["lr"] = eps
        optimizer.zero_grad()
        (w**3).sum().backward()
        g = 3 * expected**2
        v = 0.9 * v - 0.0005 * eps * expected - eps * g
        expected = expected + v
        optimizer.step()
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-14)


def transform_steps(augment: str, size: int) -> list:
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    return list(folder_transform(augment, train=True, size=size, mean=mean, std=std).transforms)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_recipe_augmentation_is_the_papers(name):
    paper, config = PAPERS[name], config_of(name)
    expected = paper["augment"]
    if isinstance(expected, str):  # an in-memory dataset's batched augmentation, by name
        assert config.augment == expected
        return
    size = model_entry(paper["model"]).default_input_size({})[-1]
    steps = transform_steps(config.augment, size)
    kinds = [type(step) for step in steps]
    assert v2.RandomHorizontalFlip in kinds
    if expected[0] == "inception":
        (crop,) = [s for s in steps if isinstance(s, v2.RandomResizedCrop)]
        assert crop.scale == expected[1] and crop.ratio == pytest.approx(expected[2])
        return
    _, low, high, crop_size, lighting = expected
    assert size == crop_size
    resize = steps[0]
    if low == high:  # a fixed 256x256 image: resize the shorter side, take the centre
        assert isinstance(resize, v2.Resize) and resize.size == [low]
        assert isinstance(steps[1], v2.CenterCrop) and steps[1].size == (low, low)
    else:  # scale jitter: the shorter side drawn from [low, high]
        assert isinstance(resize, v2.RandomResize)
        assert (resize.min_size, resize.max_size - 1) == (low, high)
    (crop,) = [s for s in steps if isinstance(s, v2.RandomCrop)]
    assert crop.size == (crop_size, crop_size)
    assert (PCALighting in kinds) == (lighting == "lighting")
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    out = folder_transform(config.augment, train=True, size=size, mean=(0,) * 3, std=(1,) * 3)(
        image
    )
    assert tuple(out.shape) == (3, crop_size, crop_size)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_recipe_schedule_gives_the_papers_rates(name):
    paper, config = PAPERS[name], config_of(name)
    if "schedule" not in paper:
        assert config.schedule == "multistep"  # lenet1998: a decreasing staircase
        return
    steps_per_epoch = 100
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = create_scheduler(optimizer, config, steps_per_epoch)
    kind, *details = paper["schedule"]
    if kind == "plateau":
        assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        assert scheduler.factor == pytest.approx(details[0])
        return
    rates = []
    for _ in range(steps_per_epoch * 20 if kind != "iterations" else 50_000):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    lr0 = config.lr
    if kind == "every":
        epochs, factor = details
        assert rates[epochs * steps_per_epoch - 1] == pytest.approx(lr0)
        assert rates[epochs * steps_per_epoch] == pytest.approx(lr0 * factor)
        assert rates[2 * epochs * steps_per_epoch] == pytest.approx(lr0 * factor**2)
    elif kind == "iterations":
        (first, second), factor = details
        assert rates[first - 1] == pytest.approx(lr0)
        assert rates[first] == pytest.approx(lr0 * factor)
        assert rates[second] == pytest.approx(lr0 * factor**2)
    else:  # epochs
        milestones, factor = details
        assert [m * steps_per_epoch for m in config.milestones] == [
            m * steps_per_epoch for m in milestones
        ]
        assert config.gamma == pytest.approx(factor)


@pytest.mark.parametrize("name", sorted(PAPERS) + sorted(NOT_A_PAPER))
def test_every_recipe_names_its_augmentation_and_only_registered_models(name):
    entry = get_recipe(name)
    assert "augment" in entry.settings and entry.settings["augment"] != "default"
    models = set(list_models())
    assert entry.model in models and set(entry.models) <= models


@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        ("resnet20", "cifar10", "resnet2016_cifar"),
        ("resnet110", "cifar10", "resnet2016_cifar"),
        ("plain56", "cifar10", "resnet2016_cifar"),
        ("wrn_28_10", "cifar100", "wrn2016_cifar"),
        ("densenet_bc_100_12", "cifar10", "densenet2017_cifar"),
        ("alexnet_paper", "folder:/data/imagenet", "alexnet2012"),
        ("vgg16", "folder:/data/imagenet", "vgg2014"),
        ("resnet50", "folder:/data/imagenet", "resnet2016_imagenet"),
        ("lenet5", None, "lenet1998"),
        ("lenet5", "mnist", "lenet1998"),
        ("resnet20", None, DIGITS_RECIPE),
        ("vgg16_bn", "folder:/data/imagenet", None),  # BN came after VGG: no paper recipe
        ("resnet20", "svhn", None),
    ],
)
def test_train_without_recipe_uses_the_papers_for_that_model_and_dataset(model, data, expected):
    assert default_recipe_for(model, data) == expected
    config = resolve_config(model, data=data)
    assert config.recipe == expected
    if expected is not None:
        assert config.data == (data or get_recipe(expected).settings["data"])


def test_train_resnet20_on_cifar10_is_resnet2016_cifar_and_says_so():
    config = resolve_config("resnet20", data="cifar10")
    assert (config.optimizer, config.lr, config.schedule) == ("momentum", 0.1, "multistep")
    note = recipe_note("resnet20", "cifar10", config.recipe)
    assert "resnet2016_cifar" in note and "He et al. 2016" in note


def test_train_on_the_digits_says_how_to_get_the_papers_recipe():
    config = resolve_config("resnet20")
    assert config.data == "digits" and config.recipe == DIGITS_RECIPE
    assert "cnnlab train resnet20 --data cifar10" in recipe_note("resnet20", None, config.recipe)
    note = recipe_note("resnet50", None, DIGITS_RECIPE)
    assert "--data folder:PATH" in note and "resnet2016_imagenet" in note
