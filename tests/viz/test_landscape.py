"""Loss landscapes: filter normalisation, a quadratic bowl in closed form, convexity numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from viz_checkpoints import read_png, write_checkpoint

from cnnlab.errors import CnnlabError
from cnnlab.viz.landscape import (
    filter_normalized_direction,
    loss_landscape,
    nonconvex_fraction,
    roughness,
    save_landscape,
)


def test_directions_are_filter_normalised_and_skip_biases_and_batch_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4))
    direction = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    for name, weight in model.named_parameters():
        if weight.dim() <= 1:  # conv/linear bias, BN weight and bias
            assert torch.count_nonzero(direction[name]) == 0, name
        else:  # each output filter (conv channel, linear row) has its weight's norm
            torch.testing.assert_close(
                direction[name].flatten(1).norm(dim=1), weight.detach().flatten(1).norm(dim=1)
            )
            assert not torch.allclose(direction[name], weight)


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(outputs.squeeze(1), targets)


def test_quadratic_bowl_matches_the_closed_form_and_is_convex():
    """Linear regression: the loss is exactly quadratic in the weights, so the grid is known."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0], dtype=torch.float64)
    model = nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.8, -1.5, 0.7, 2.5, 0.3]], dtype=torch.float64))
    before = model.weight.detach().clone()
    batches = [(inputs[:40], targets[:40]), (inputs[40:], targets[40:])]  # unequal on purpose
    result = loss_landscape(model, batches, grid=7, span=0.5, seed=3, loss_fn=mse)

    X, y, w = inputs.numpy(), targets.numpy(), before.numpy()[0]
    delta, eta = (d["weight"].numpy()[0] for d in result.directions)
    for i, beta in enumerate(result.betas):
        for j, alpha in enumerate(result.alphas):
            expected = np.mean((X @ (w + alpha * delta + beta * eta) - y) ** 2)
            assert result.losses[i, j] == pytest.approx(expected, rel=1e-9)
    line = [np.mean((X @ (w + a * delta) - y) ** 2) for a in result.line_alphas]
    np.testing.assert_allclose(result.line_losses, line, rtol=1e-9)

    # elliptic contours: the Hessian in (alpha, beta) is 2/n D^T X^T X D, positive definite
    D = np.stack([delta, eta], axis=1)
    hessian = 2 / len(X) * D.T @ X.T @ X @ D
    assert np.all(np.linalg.eigvalsh(hessian) > 0)
    step = result.alphas[1] - result.alphas[0]
    centre = result.losses[2:5, 2:5]
    assert (centre[1, 2] - 2 * centre[1, 1] + centre[1, 0]) / step**2 == pytest.approx(
        hessian[0, 0], rel=1e-6
    )
    assert result.nonconvex_fraction == 0.0
    torch.testing.assert_close(model.weight, before)  # the model is left as it was


def test_convexity_numbers_tell_a_bowl_from_an_egg_crate():
    axis = np.linspace(-1, 1, 21)
    a, b = np.meshgrid(axis, axis)
    bowl = 1.0 + 2 * a**2 + 0.5 * b**2
    crate = 2.0 + np.sin(6 * a) * np.sin(6 * b) + 0.2 * (a**2 + b**2)
    step = axis[1] - axis[0]
    assert nonconvex_fraction(bowl, step) == 0.0
    assert nonconvex_fraction(crate, step) > 0.4
    assert roughness(crate, step) > 3 * roughness(bowl, step)


def test_walls_far_above_the_cap_do_not_hide_the_basin():
    """A deep net's loss climbs to 1e6 at the grid's edge; the numbers judge the basin."""
    axis = np.linspace(-1, 1, 21)
    a, b = np.meshgrid(axis, axis)
    step = axis[1] - axis[0]
    walls = np.where(a**2 + b**2 > 0.8, 1e6 * (a**2 + b**2) ** 4, 0.0)
    bowl = 1.0 + 2 * a**2 + 0.5 * b**2 + walls
    crate = 2.0 + 0.3 * np.sin(9 * a) * np.sin(9 * b) + 0.2 * (a**2 + b**2) + walls
    capped = nonconvex_fraction(crate, step, cap=10)
    assert capped > 0.5
    assert nonconvex_fraction(crate, step) < 0.5 * capped  # the walls' curvature hides the crate
    assert nonconvex_fraction(bowl, step, cap=10) == 0.0
    assert roughness(crate, step, cap=10) > 3 * roughness(bowl, step, cap=10)


def test_batch_norm_runs_in_eval_mode_with_its_statistics_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    model[1].running_mean.fill_(0.3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,)))]
    result = loss_landscape(model, batches, grid=3, span=0.2)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key])
    with torch.no_grad():
        centre = F.cross_entropy(model.eval()(batches[0][0]), batches[0][1])
    assert result.losses[1, 1] == pytest.approx(float(centre), rel=1e-5)


def test_bad_grid_is_refused():
    with pytest.raises(CnnlabError, match="--grid"):
        loss_landscape(nn.Linear(2, 2), [], grid=2)


def test_command_writes_a_picture_that_follows_the_checkpoint(tmp_path):
    pictures = []
    for seed in (0, 1):
        checkpoint = write_checkpoint(tmp_path / f"run{seed}" / "best.pt", seed=seed)
        path, landscape = save_landscape(
            checkpoint, grid=5, span=0.5, batches=1, batch_size=16, progress=False
        )
        assert path == tmp_path / f"run{seed}" / "best_landscape.png"
        assert landscape.losses.shape == (5, 5) and np.isfinite(landscape.losses).all()
        pictures.append(read_png(path))
    assert pictures[0].shape == pictures[1].shape and pictures[0].shape[1] > 1200
    assert (pictures[0] != pictures[1]).mean() > 0.01


def test_a_run_is_scored_on_its_own_dataset_and_data_directory(tmp_path, monkeypatch):
    """No --data, no --data-dir: the run's cifar10 in its recorded folder, as evaluate reads it."""
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "empty-default"))
    from torchvision.io import write_png

    from cnnlab.checkpoint import save_checkpoint
    from cnnlab.models import create_model

    data_dir = tmp_path / "my-cifar"
    for split in ("train", "test"):
        for label in range(10):
            folder = data_dir / split / f"class{label}"
            folder.mkdir(parents=True)
            image = torch.full((3, 32, 32), 20 * label, dtype=torch.uint8)
            write_png(image, str(folder / "0.png"))
    model = create_model("lenet5_modern", num_classes=10, in_chans=3)
    config = {"model": "lenet5_modern", "data": "cifar10", "data_dir": str(data_dir)}
    state = {
        "model": model.state_dict(),
        "model_name": "lenet5_modern",
        "model_kwargs": {"num_classes": 10, "in_chans": 3},
        "config": config,
        "epoch": 1,
        "step": 1,
    }
    checkpoint = save_checkpoint(state, tmp_path / "run" / "best.pt")
    path, landscape = save_landscape(checkpoint, grid=3, batches=1, batch_size=5, progress=False)
    assert path.is_file() and "5 cifar10 training images" in landscape.label
