"""resnet_cifar_fast: a quarter of the paper's epochs, with the schedule its docstring promises."""

from __future__ import annotations

import math

from cnnlab.models import create_model
from cnnlab.optim import create_optimizer
from cnnlab.training import resolve_config
from cnnlab.training.recipes import get_recipe
from cnnlab.training.schedules import create_scheduler


def test_fast_recipe_fits_in_a_quarter_of_the_papers_epochs():
    paper, fast = get_recipe("resnet2016_cifar"), get_recipe("resnet_cifar_fast")
    assert fast.settings["epochs"] <= paper.settings["epochs"] / 4 == 41
    assert fast.model == paper.model == "resnet20" and fast.tta == "none"


def test_rate_warms_up_linearly_then_follows_a_cosine_to_zero():
    config = resolve_config("resnet20", "resnet_cifar_fast")
    model = create_model("resnet20")
    optimizer = create_optimizer(
        config.optimizer, model, lr=config.lr, momentum=config.momentum, weight_decay=0.0
    )
    assert optimizer.param_groups[0]["nesterov"] is True
    steps_per_epoch = 10
    scheduler = create_scheduler(optimizer, config, steps_per_epoch)
    rates = []
    for _ in range(config.epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    warmup = round(config.warmup_epochs * steps_per_epoch)
    start = config.warmup_start * config.lr
    for step in range(warmup):  # torch's LinearLR from warmup_start x lr up to lr
        assert math.isclose(rates[step], start + (config.lr - start) * step / warmup, rel_tol=1e-6)
    length = len(rates) - warmup
    for step in range(warmup, len(rates)):  # CosineAnnealingLR's closed form
        expected = config.lr * (1 + math.cos(math.pi * (step - warmup) / length)) / 2
        assert math.isclose(rates[step], expected, rel_tol=1e-6, abs_tol=1e-9)
    assert max(rates) == rates[warmup] == 0.2
