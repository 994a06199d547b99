"""The speedrun tricks as engine features: whitening and dirac init, frozen BatchNorm scales,
BatchNorm-shift rate multiplier, lookahead and the warm-up-then-linear schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.optim import create_optimizer
from cnnlab.training.config import TrainConfig
from cnnlab.training.init import (
    apply_lr_scales,
    freeze_norm_weights,
    init_dirac,
    init_whitening,
    optimizer_groups,
)
from cnnlab.training.lookahead import Lookahead
from cnnlab.training.schedules import create_scheduler, warmup_linear_factor


def correlated_images(count: int = 400, seed: int = 0) -> torch.Tensor:
    """Smooth, colour-correlated images: their 2x2 patches are far from white."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 1, 10, 10, generator=generator)
    smooth = F.avg_pool2d(F.pad(noise, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    colour = torch.tensor([1.0, 0.7, 0.4]).view(1, 3, 1, 1)
    return smooth * colour + 0.3 * torch.randn(count, 3, 10, 10, generator=generator)


def test_whitened_patches_have_identity_covariance():
    images = correlated_images()
    conv = nn.Conv2d(3, 24, 2)
    init_whitening(conv, images, eps=1e-6)
    outputs = F.conv2d(images, conv.weight).permute(0, 2, 3, 1).reshape(-1, 24).double()
    # an independent reference: numpy's covariance of the raw patches is far from identity ...
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    raw = patches.double().T @ patches.double() / len(patches)
    assert np.abs(raw.numpy() - np.eye(12)).max() > 0.3
    # ... and the first 12 whitened outputs' second moment is the identity
    whitened = outputs[:, :12]
    moment = (whitened.T @ whitened / len(whitened)).numpy()
    np.testing.assert_allclose(moment, np.eye(12), atol=1e-3)
    assert torch.equal(outputs[:, 12:], -outputs[:, :12])  # the negatives
    assert not conv.weight.requires_grad


def test_whitening_eps_shrinks_the_weak_directions():
    images = correlated_images()
    conv = nn.Conv2d(3, 12, 2)
    init_whitening(conv, images, eps=0.05)
    outputs = F.conv2d(images, conv.weight).permute(0, 2, 3, 1).reshape(-1, 12).double()
    variances = (outputs**2).mean(0)
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    eigenvalues = np.linalg.eigvalsh((patches.T @ patches / len(patches)).double().numpy())[::-1]
    np.testing.assert_allclose(variances.numpy(), eigenvalues / (eigenvalues + 0.05), rtol=1e-3)


def test_whitening_refuses_a_conv_of_the_wrong_width():
    with pytest.raises(ConfigError, match="12 or 24 filters"):
        init_whitening(nn.Conv2d(3, 16, 2), correlated_images(10))


def test_dirac_init_passes_the_first_channels_through():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.Conv2d(6, 6, 2))
    before = model[0].weight[4:].clone()
    assert init_dirac(model) == 1  # the 2x2 conv has no centre: left alone
    x = torch.randn(2, 4, 5, 5)
    out = model[0](x)
    assert torch.allclose(out[:, :4], x, atol=1e-6)
    assert torch.equal(model[0].weight[4:], before)


def test_frozen_norm_weights_and_scaled_shift_rate():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(2, 2))
    assert freeze_norm_weights(model) == 1
    assert not model[1].weight.requires_grad
    config = TrainConfig(lr=0.5, weight_decay=0.01, norm_bias_lr_scale=64.0)
    optimizer = create_optimizer(
        "nesterov", optimizer_groups(model, config), lr=0.5, momentum=0.9, weight_decay=0.01
    )
    apply_lr_scales(optimizer)
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    shift = by_param[id(model[1].bias)]
    assert shift["lr"] == pytest.approx(32.0)
    assert shift["lr"] * shift["weight_decay"] == pytest.approx(0.5 * 0.01)  # same decay/step
    assert by_param[id(model[0].weight)]["lr"] == 0.5
    assert id(model[1].weight) not in by_param


def test_lookahead_matches_its_closed_form():
    weight = nn.Parameter(torch.zeros(3))
    model = nn.Module()
    model.weight = weight
    lookahead = Lookahead(model, total_steps=20, decay=0.9, every=5, power=3)
    slow = torch.zeros(3)
    for step in range(1, 21):
        with torch.no_grad():
            weight.add_(torch.tensor([1.0, -2.0, 0.5]) * step)  # any optimizer's step
        fast = weight.detach().clone()
        lookahead.step(step)
        if step % 5:
            assert torch.equal(weight.detach(), fast)  # untouched between synchronisations
            continue
        share = 0.9**5 * (step / 20) ** 3
        slow = share * slow + (1 - share) * fast
        torch.testing.assert_close(weight.detach(), slow)
    with torch.no_grad():
        weight.add_(1.0)
    lookahead.finish()
    torch.testing.assert_close(weight.detach(), slow)


def test_lookahead_state_round_trip():
    model = nn.Linear(2, 2)
    first = Lookahead(model, 10)
    with torch.no_grad():
        model.weight.add_(1)
    first.step(5)
    second = Lookahead(nn.Linear(2, 2), 10)
    second.load_state_dict(first.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(first.slow, second.slow, strict=True))


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.2), (23, 0.2 + 0.8 * 23 / 46), (46, 1.0), (73, 1 - 0.93 * 27 / 54), (100, 0.07)],
)
def test_warmup_linear_factor_closed_form(step, expected):
    assert warmup_linear_factor(step, 46, 100, 0.2, 0.07) == pytest.approx(expected)


def test_linear_schedule_through_the_scheduler():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=2.0)
    config = TrainConfig(
        epochs=4, schedule="linear", warmup_epochs=1, warmup_start=0.2, lr_end_factor=0.07
    )
    scheduler = create_scheduler(optimizer, config, steps_per_epoch=25)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.4)
    assert rates[25] == pytest.approx(2.0)
    assert rates[99] == pytest.approx(2.0 * (1 - 0.93 * 74 / 75))
    assert max(rates) == pytest.approx(2.0) and rates.index(max(rates)) == 25
    assert all(math.isfinite(r) for r in rates)


@pytest.mark.parametrize(
    ("field", "value"),
    [("lookahead", 1.0), ("norm_bias_lr_scale", 0.0), ("lr_end_factor", 1.5), ("warmup_start", 0)],
)
def test_bad_trick_settings_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        TrainConfig(**{field: value})


def small_speedrun(tmp_path, name: str, **options):
    from cnnlab.training import train

    settings = dict(data="digits", model_kwargs={"widths": [8, 16, 16]}, epochs=2)
    settings.update(batch_size=128, whitening_bias_epochs=1, amp=False, **options)
    return train(
        model="speedrun_cifar_net", recipe="speedrun_cifar", out=str(tmp_path / name), **settings
    )


def test_speedrun_recipe_freezes_what_it_should(tmp_path, one_thread, monkeypatch):
    from cnnlab.training import engine

    seen, training = [], []
    original = engine.Trainer._end_epoch

    def record(self, epoch, *args):
        seen.append({k: v.clone() for k, v in self.model.whiten.state_dict().items()})
        training.append(self.model.whiten.bias.requires_grad)
        original(self, epoch, *args)

    monkeypatch.setattr(engine.Trainer, "_end_epoch", record)
    result = small_speedrun(tmp_path, "run", epochs=3)
    model = result.model
    assert all(torch.equal(bn.weight, torch.ones_like(bn.weight)) for bn in _norms(model))
    assert all(torch.equal(s["weight"], seen[0]["weight"]) for s in seen)  # never trained
    assert torch.equal(seen[1]["bias"], seen[0]["bias"])  # trained for 1 epoch only
    assert torch.equal(seen[2]["bias"], seen[0]["bias"])
    # frozen outright, so that backward passes stop at the second conv
    assert training == [True, False, False]
    assert result.final["test_top1"] > 50  # digits: a net that learns


def test_speedrun_run_with_lookahead_resumes_exactly(tmp_path, one_thread, monkeypatch):
    from cnnlab.checkpoint import load_checkpoint
    from cnnlab.training import TrainingInterrupted, engine, resume

    whole = small_speedrun(tmp_path, "whole", lookahead=0.95)
    original = engine.Trainer._train_step

    def stop_at_step_15(self, *args):
        original(self, *args)
        self._stop_requested = self.global_step + 1 >= 15

    with monkeypatch.context() as patch:
        patch.setattr(engine.Trainer, "_train_step", stop_at_step_15)
        with pytest.raises(TrainingInterrupted):
            small_speedrun(tmp_path, "parts", lookahead=0.95)
    state = load_checkpoint(tmp_path / "parts" / "checkpoint.pt")
    assert state["step"] == 15 and state["lookahead"] is not None
    resumed = resume(tmp_path / "parts")
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def _norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_fine_tuning_from_trained_weights_keeps_them(tmp_path, one_thread, monkeypatch):
    """--init-weights with the speedrun recipe: the dirac and whitening initialisations are
    for fresh networks and must not overwrite the trained filters being fine-tuned."""
    from cnnlab.training import engine

    source = small_speedrun(tmp_path, "source", epochs=1)
    trained = {k: v.clone() for k, v in source.model.state_dict().items()}
    started = {}
    original = engine.Trainer._build_optimisation

    def record(self):
        original(self)
        started.update({k: v.clone() for k, v in self.model.state_dict().items()})

    monkeypatch.setattr(engine.Trainer, "_build_optimisation", record)
    tuned = small_speedrun(
        tmp_path, "tuned", epochs=1, init_weights=str(tmp_path / "source" / "checkpoint.pt")
    )
    for key in ("whiten.weight", "block1.conv1.weight", "block3.conv2.weight", "head.weight"):
        assert torch.equal(started[key], trained[key]), key
    assert torch.equal(tuned.model.whiten.weight, trained["whiten.weight"])  # still frozen
