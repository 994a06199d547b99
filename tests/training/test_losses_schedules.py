"""Losses by name against their closed forms; schedules against the papers' numbers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError, UnknownNameError
from cnnlab.training.config import TrainConfig
from cnnlab.training.losses import create_loss
from cnnlab.training.schedules import ErrorGatedWarmup, create_scheduler

SCORES = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
TARGET = torch.tensor([0, 1])


def test_losses_match_their_closed_forms():
    one_hot = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    # multi-class SVM: mean over samples of sum_{j != y} max(0, 1 - s_y + s_j) / C
    hinge = ((0 + 0.0 + 0.0) + (max(0, 1 - 0.2 + 0.1) + max(0, 1 - 0.2 + 3.0))) / 3 / 2
    expected = {
        "cross_entropy": -torch.log_softmax(SCORES, 1)[[0, 1], [0, 1]].mean(),
        "hinge": torch.tensor(hinge),
        "mse": ((SCORES - one_hot) ** 2).mean(),
        "mae": (SCORES - one_hot).abs().mean(),
        "kl": -(one_hot * torch.log_softmax(SCORES, 1)).sum() / 2,  # KL to one-hot = CE
    }
    for name, value in expected.items():
        torch.testing.assert_close(create_loss(name)(SCORES, TARGET), value, msg=name)
    diff = (SCORES - one_hot).abs()
    huber = torch.where(diff < 1, 0.5 * diff**2, diff - 0.5).mean()
    torch.testing.assert_close(create_loss("huber")(SCORES, TARGET), huber)


def test_label_smoothing_and_lenet_rbf():
    smoothed = create_loss("cross_entropy", label_smoothing=0.1)(SCORES, TARGET)
    reference = nn.CrossEntropyLoss(label_smoothing=0.1)(SCORES, TARGET)
    torch.testing.assert_close(smoothed, reference)
    distances = torch.tensor([[-1.0, -4.0], [-9.0, -2.0]])  # negative squared distances
    # eq. (8): the mean squared distance to the correct class's code
    assert create_loss("lenet_rbf")(distances, torch.tensor([0, 1])).item() == pytest.approx(1.5)
    with pytest.raises(ConfigError, match="label smoothing does not apply"):
        create_loss("hinge", label_smoothing=0.1)
    with pytest.raises(UnknownNameError, match="Did you mean huber"):
        create_loss("hubber")


def lrs(schedule_config: dict, steps: int, steps_per_epoch: int = 10) -> list[float]:
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    config = TrainConfig(**{"epochs": 200, **schedule_config})
    scheduler = create_scheduler(optimizer, config, steps_per_epoch)
    optimizer.step()  # once, so the scheduler does not warn; the rates are all we read
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    return seen


def test_resnet_cifar_divides_by_ten_at_32k_and_48k_iterations():
    # He et al. 2016, Sec. 4.2: 0.1, /10 at 32k and 48k iterations
    seen = lrs({"schedule": "multistep", "milestones": [32000, 48000], "milestone_unit": "iter"},
               48001)  # fmt: skip
    assert seen[31999] == pytest.approx(0.1) and seen[32000] == pytest.approx(0.01)
    assert seen[47999] == pytest.approx(0.01) and seen[48000] == pytest.approx(0.001)


def test_epoch_schedules():
    # WRN: x0.2 at epochs 60, 120, 160 (10 steps per epoch here)
    seen = lrs({"schedule": "multistep", "milestones": [60, 120, 160], "gamma": 0.2}, 1601)
    assert [seen[599], seen[600], seen[1200], seen[1600]] == pytest.approx(
        [0.1, 0.02, 0.004, 0.0008]
    )
    # GoogLeNet: -4% every 8 epochs
    seen = lrs({"schedule": "googlenet"}, 161)
    assert [seen[79], seen[80], seen[160]] == pytest.approx([0.1, 0.096, 0.1 * 0.96**2])
    # linear warm-up then cosine to zero over the remaining epochs
    seen = lrs({"schedule": "cosine", "warmup_epochs": 5, "epochs": 20}, 200)
    assert seen[0] == pytest.approx(0.001) and seen[50] == pytest.approx(0.1)
    assert seen[125] == pytest.approx(0.05, abs=1e-3) and seen[-1] < 1e-3
    # one-cycle peaks at the configured rate
    seen = lrs({"schedule": "onecycle", "epochs": 10}, 100)
    assert max(seen) == pytest.approx(0.1) and seen[0] < 0.01 and seen[-1] < 1e-4


def test_resnet110_warmup_until_training_error_below_80_percent():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    config = TrainConfig(schedule="multistep", milestones=[3], warmup_until_error=80.0)
    scheduler = create_scheduler(optimizer, config, steps_per_epoch=1)
    gate = ErrorGatedWarmup(optimizer, 80.0, 0.1)
    gate.start()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    assert not gate.update(85.0) and not gate.update(math.nan)
    assert gate.update(79.0) and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # milestone still applies


def test_bad_schedule_settings_are_config_errors():
    with pytest.raises(ConfigError, match="needs --milestones"):
        lrs({"schedule": "multistep"}, 1)
    with pytest.raises(ConfigError, match="cannot be combined"):
        lrs({"schedule": "onecycle", "warmup_epochs": 1}, 1)
    with pytest.raises(ConfigError, match="schedule must be one of .*got 'exponential'"):
        TrainConfig(schedule="exponential")
