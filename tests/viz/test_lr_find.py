"""The learning-rate range test: a closed-form case, a real small net, exact state restore."""

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.viz.inputs import save_figure
from cnnlab.viz.lr_find import lr_find, lr_find_figure, lr_range_test


def _least_squares():
    """A linear regression whose full-batch gradient descent diverges above 2 / lambda_max."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(256, 8, generator=generator) * torch.linspace(0.5, 2.0, 8)
    targets = inputs @ torch.randn(8, 1, generator=generator) + 0.1 * torch.randn(
        256, 1, generator=generator
    )
    with_bias = torch.cat([inputs, torch.ones(256, 1)], dim=1)
    hessian = 2 * with_bias.T @ with_bias / len(inputs)  # of the mean squared error
    critical_lr = 2 / torch.linalg.eigvalsh(hessian).max().item()
    return inputs, targets, critical_lr


def test_least_squares_suggestion_is_stable_and_the_minimum_is_near_the_critical_rate():
    inputs, targets, critical_lr = _least_squares()
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(
        model, optimizer, [(inputs, targets)], nn.MSELoss(), start_lr=1e-4, end_lr=10, steps=100
    )
    assert result.diverged  # 10 is ~45x the critical rate: the loss must blow up
    assert 1e-3 < result.suggested_lr < critical_lr  # a rate at which descent is stable
    # the smoothed loss bottoms out within a decade of 2 / lambda_max, not at the sweep's ends
    assert critical_lr / 10 < result.min_loss_lr < critical_lr * 10
    lowest = int(np.argmin(result.smoothed))
    assert result.smoothed[lowest] < result.smoothed[0] / 10
    assert result.smoothed[lowest] < result.smoothed[-1]
    # the rates are the exponential sweep
    np.testing.assert_allclose(np.diff(np.log(result.lrs)), np.log(1e5) / 99, rtol=1e-6)


class _TinyConvNet(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16, 3),
        )


def test_model_and_optimizer_state_are_restored_exactly():
    torch.manual_seed(0)
    model = _TinyConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    batches = [(torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))) for _ in range(3)]
    # one real step first, so there are momentum buffers and BN statistics to restore
    nn.functional.cross_entropy(model(batches[0][0]), batches[0][1]).backward()
    optimizer.step()
    model.eval()
    model_before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer_before = optimizer.state_dict()
    momentum_before = {
        i: s["momentum_buffer"].clone() for i, s in optimizer_before["state"].items()
    }

    lr_range_test(model, optimizer, batches, nn.CrossEntropyLoss(), steps=20)

    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in model_before.items())
    state = optimizer.state_dict()
    assert all(
        torch.equal(state["state"][i]["momentum_buffer"], v) for i, v in momentum_before.items()
    )
    assert [g["lr"] for g in optimizer.param_groups] == [0.05]
    assert not model.training  # the mode it was in


def test_sweep_changes_the_weights_while_it_runs():
    # the restore above must have had something to undo
    torch.manual_seed(0)
    model = _TinyConvNet()
    weights = model[0].weight.detach().clone()
    seen = []
    batches = [(torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,)))]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    lr_range_test(
        model,
        optimizer,
        batches,
        nn.CrossEntropyLoss(),
        start_lr=0.1,
        end_lr=1.0,
        steps=5,
        progress=lambda step: seen.append(not torch.equal(model[0].weight, weights)),
    )
    assert any(seen)
    assert torch.equal(model[0].weight, weights)


def test_lenet_on_digits_gives_a_sane_rate_and_a_labelled_plot(tmp_path):
    result = lr_find("lenet5_modern", "digits", batch_size=32, start_lr=1e-4, end_lr=10, steps=60)
    assert 1e-3 <= result.suggested_lr <= 3.0
    assert result.suggested_lr < result.min_loss_lr
    lowest = int(np.argmin(result.smoothed))
    assert 0 < lowest < len(result.smoothed) - 1  # the loss curve has a minimum inside
    figure = lr_find_figure(result, "lenet5_modern on digits")
    axis = figure.axes[0]
    assert axis.get_xscale() == "log" and "learning rate" in axis.get_xlabel()
    smoothed = [line for line in axis.get_lines() if line.get_label() == "smoothed loss"][0]
    np.testing.assert_allclose(smoothed.get_ydata(), result.smoothed)
    image = imread(save_figure(figure, tmp_path / "lr.png"))
    assert image.shape[:2] == (500, 800) and image.std() > 0.05


def test_impossible_sweeps_are_refused():
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.randn(4, 2), torch.randn(4, 1))]
    with pytest.raises(ConfigError, match="start_lr < end_lr"):
        lr_range_test(model, optimizer, data, nn.MSELoss(), start_lr=1.0, end_lr=0.1)
    with pytest.raises(ConfigError, match="start the sweep lower"):
        lr_range_test(model, optimizer, data, nn.MSELoss(), start_lr=1e6, end_lr=1e9, steps=10)


def _result(smoothed, losses=None, diverged=False):
    from cnnlab.viz.lr_find import LrFindResult

    smoothed = np.asarray(smoothed, dtype=float)
    lrs = np.logspace(-4, 0, len(smoothed))
    lowest = int(np.argmin(smoothed))
    return LrFindResult(
        lrs=lrs,
        losses=np.asarray(smoothed if losses is None else losses, dtype=float),
        smoothed=smoothed,
        suggested_lr=float(lrs[max(lowest - 1, 0)]),
        min_loss_lr=float(lrs[lowest]),
        diverged=diverged,
    )


def test_a_rise_the_plot_shows_is_called_a_blow_up_even_when_the_sweep_ran_to_the_end():
    # fell from 2.3 to 0.5, then climbed to 1.2 (2.4x) without reaching the 4x stop rule
    rising = _result([2.3, 2.0, 1.2, 0.6, 0.5, 0.7, 0.9, 1.2])
    assert not rising.diverged and rising.blew_up
    text = rising.describe_end()
    assert "blew up" in text and "no blow-up" not in text and "2.40x" in text
    # one step's loss shooting up 6x is visible in the plot of the raw losses too
    spike = _result([2.3, 1.0, 0.5, 0.5, 0.55], losses=[2.3, 1.0, 0.5, 3.0, 0.55])
    assert spike.blew_up and "6.00x" in spike.describe_end()
    flat_end = _result([2.3, 2.0, 1.2, 0.6, 0.5, 0.52])
    assert not flat_end.blew_up and "no blow-up" in flat_end.describe_end()
    assert "stopped" in _result([2.3, 1.0, 0.5, 4.0], diverged=True).describe_end()


def test_a_sweep_below_the_critical_rate_reports_no_blow_up():
    inputs, targets, critical_lr = _least_squares()
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(
        model,
        optimizer,
        [(inputs, targets)],
        nn.MSELoss(),
        start_lr=1e-4,
        end_lr=critical_lr / 4,
        steps=60,
    )
    assert not result.blew_up and "no blow-up" in result.describe_end()
