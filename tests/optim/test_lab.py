"""The optimizer lab: test functions against closed forms, races that show the lectures' lessons,
and pictures whose pixels depend on the data."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import ConfigError, UnknownNameError
from cnnlab.optim.lab import parse_lrs, parse_start, run_lab, run_optimizer
from cnnlab.optim.registry import create_optimizer
from cnnlab.optim.surfaces import FUNCTIONS, get_function
from cnnlab.viz.optim_lab import DPI, FIGSIZE, plot_lab

torch.set_num_threads(1)

# Published minima (closed forms; Himmelblau 1972's four, to the digits commonly tabulated,
# e.g. Wikipedia "Test functions for optimization").
KNOWN_MINIMA = {
    "rosenbrock": [(1.0, 1.0)],
    "beale": [(3.0, 0.5)],
    "himmelblau": [
        (3.0, 2.0),
        (-2.805118, 3.131312),
        (-3.779310, -3.283186),
        (3.584428, -1.848126),
    ],
    "rastrigin": [(0.0, 0.0)],
    "ravine": [(0.0, 0.0)],
    "saddle": [(0.0, 1.0), (0.0, -1.0)],
    "cliff": [(2.0, 0.0)],
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_known_minima_are_stationary_minima(name):
    function = get_function(name)
    assert len(function.minima) == len(KNOWN_MINIMA[name])
    for point, expected in zip(function.minima, KNOWN_MINIMA[name], strict=True):
        assert point == pytest.approx(expected, abs=1e-6)
        x = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(function(x), x)
        assert float(grad.abs().max()) < 1e-8
        hessian = torch.autograd.functional.hessian(function, x.detach())
        assert float(torch.linalg.eigvalsh(hessian).min()) > 0  # a minimum, not a saddle
    assert function.minimum_value == pytest.approx({"saddle": -0.25}.get(name, 0.0), abs=1e-12)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradients_match_finite_differences(name):
    function = get_function(name)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        low = torch.tensor([function.xlim[0], function.ylim[0]], dtype=torch.float64)
        high = torch.tensor([function.xlim[1], function.ylim[1]], dtype=torch.float64)
        x = low + (high - low) * torch.rand(2, dtype=torch.float64, generator=generator)
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(function(x), x)
        h = 1e-6
        for i in range(2):
            step = torch.zeros(2, dtype=torch.float64)
            step[i] = h
            central = (function(x.detach() + step) - function(x.detach() - step)) / (2 * h)
            assert float(grad[i]) == pytest.approx(float(central), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_closed_form_gradient_is_autograds(name):
    """First-order lab runs step on ``gradient``; it must be the surface's own derivative."""
    function = get_function(name)
    generator = torch.Generator().manual_seed(1)
    low = torch.tensor([function.xlim[0], function.ylim[0]], dtype=torch.float64)
    high = torch.tensor([function.xlim[1], function.ylim[1]], dtype=torch.float64)
    points = low + (high - low) * torch.rand(50, 2, dtype=torch.float64, generator=generator)
    for point in [*points, torch.tensor(function.start, dtype=torch.float64)]:
        x = point.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(function(x), x)
        closed = torch.tensor(function.gradient(*point.tolist()), dtype=torch.float64)
        torch.testing.assert_close(closed, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["newton", "bfgs", "cg", "hessian_free", "sgd"])
def test_path_equals_stepping_every_step_with_autograd(optimizer):
    """The run stops stepping at an exact fixed point; the path must be what stepping all the
    way gives, bitwise (for the closure methods, whose gradients are autograd's in both)."""
    function = get_function("rosenbrock")
    steps, lr = 120, 1e-3
    point = torch.tensor(function.start, dtype=torch.float64, requires_grad=True)
    optim = create_optimizer(optimizer, [point], **({"lr": lr} if optimizer == "sgd" else {}))

    def closure():
        optim.zero_grad()
        loss = function(point)
        loss.backward()
        return loss

    expected = [point.detach().clone()]
    for _ in range(steps):
        if optimizer == "sgd":
            closure()
            optim.step()
        else:
            optim.step(closure)
        expected.append(point.detach().clone())
    run = run_optimizer(
        function,
        optimizer,
        steps=steps,
        start=function.start,
        lr=lr if optimizer == "sgd" else None,
    )
    if optimizer == "sgd":  # steps on the closed-form gradient: equal to rounding
        torch.testing.assert_close(run.points, torch.stack(expected), rtol=0, atol=1e-12)
    else:
        assert torch.equal(run.points, torch.stack(expected))


def test_saddle_origin_is_a_saddle():
    hessian = torch.autograd.functional.hessian(
        get_function("saddle"), torch.zeros(2, dtype=torch.float64)
    )
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert float(eigenvalues.min()) < 0 < float(eigenvalues.max())


def test_momentum_beats_sgd_on_the_ravine():
    """The lectures: SGD zigzags across a tilted high-curvature ravine; momentum averages the
    zigzag away and gets down the ravine in fewer steps."""
    result = run_lab("ravine", ["sgd", "momentum"])
    sgd, momentum = result.runs
    assert momentum.steps_to_tolerance is not None
    assert sgd.steps_to_tolerance is None or momentum.steps_to_tolerance < sgd.steps_to_tolerance
    # SGD zigzags: its steps alternate in direction across the ravine
    sgd_steps = torch.diff(sgd.points, dim=0)[:20]
    turns = (sgd_steps[1:] * sgd_steps[:-1]).sum(dim=1) < 0
    assert int(turns.sum()) >= 10


def test_clipping_keeps_the_cliff_run_bounded_where_plain_sgd_explodes():
    cliff = get_function("cliff")
    plain = run_optimizer(cliff, "sgd", steps=80, start=cliff.start, lr=0.1)
    clipped = run_optimizer(cliff, "sgd", steps=80, start=cliff.start, lr=0.1, clip=1.0)
    start_to_minimum = math.dist(cliff.start, cliff.minima[0])
    assert plain.max_distance > 3 * start_to_minimum  # thrown far away by one huge gradient
    assert clipped.max_distance < 1.2 * start_to_minimum
    steps = torch.diff(clipped.points, dim=0).norm(dim=1)
    assert float(steps.max()) <= 0.1 * 1.0 + 1e-12  # lr x clip bounds every step


def test_second_order_methods_reach_the_rosenbrock_minimum_in_the_lab():
    result = run_lab("rosenbrock", ["sgd", "newton", "bfgs"], steps=60)
    by_name = {run.optimizer: run for run in result.runs}
    assert by_name["newton"].final_distance < 1e-6 and by_name["bfgs"].final_distance < 1e-6
    assert by_name["sgd"].final_distance > 0.1  # crawls along the valley


def test_on_himmelblau_the_optimizer_decides_which_minimum():
    result = run_lab("himmelblau", ["sgd", "adam"], steps=200)
    minima = torch.tensor(result.function.minima, dtype=torch.float64)
    reached = [int(torch.cdist(run.points[-1:], minima).argmin()) for run in result.runs]
    assert all(run.final_distance < 1e-3 for run in result.runs)
    assert reached[0] != reached[1]  # same start, different minima


def test_cliff_race_runs_each_optimizer_with_and_without_clipping():
    result = run_lab("cliff", ["sgd"], steps=5)
    assert [run.label for run in result.runs] == ["sgd", "sgd (clip 1)"]


def test_learning_rate_and_start_parsing():
    assert parse_lrs("0.5") == {"*": 0.5}
    assert parse_lrs("sgd=0.1,Adam=0.05") == {"sgd": 0.1, "adam": 0.05}
    assert parse_start("-1.2,1") == (-1.2, 1.0)
    with pytest.raises(ConfigError, match="NAME=NUMBER"):
        parse_lrs("sgd=fast")
    with pytest.raises(ConfigError, match="two numbers"):
        parse_start("1")
    with pytest.raises(UnknownNameError, match="rosenbrock"):
        get_function("rosenbrok")
    with pytest.raises(UnknownNameError, match="adam"):
        run_lab("ravine", ["adamm"], steps=2)
    with pytest.raises(ConfigError, match="finite"):
        run_optimizer(get_function("rastrigin"), "sgd", steps=2, start=(math.inf, 0.0))


def test_picture_is_a_png_of_the_expected_size_whose_pixels_follow_the_data(tmp_path):
    first = run_lab("himmelblau", ["sgd", "adam"], steps=30)
    second = run_lab("himmelblau", ["newton", "bfgs"], steps=30)
    a = plot_lab(first, tmp_path / "a.png")
    b = plot_lab(second, tmp_path / "b.png")
    with Image.open(a) as image_a, Image.open(b) as image_b:
        assert image_a.format == "PNG"
        assert image_a.size == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
        pixels_a, pixels_b = np.asarray(image_a), np.asarray(image_b)
    assert pixels_a.std() > 10  # not blank
    assert (pixels_a != pixels_b).any(axis=-1).mean() > 0.01
