"""The building blocks: line searches meet their conditions, truncated CG solves and stops as
Martens describes, nonlinear CG restarts."""

import math

import pytest
import torch

from cnnlab.optim import create_optimizer
from cnnlab.optim.hessian_free import truncated_cg
from cnnlab.optim.line_search import backtracking, strong_wolfe


def along(function, x, d):
    """``t -> (f(x + t d), grad f(x + t d))`` for a torch function of a vector."""

    def value_grad_at(t):
        point = (x + t * d).requires_grad_(True)
        value = function(point)
        (grad,) = torch.autograd.grad(value, point)
        return float(value.detach()), grad

    return value_grad_at


def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


@pytest.mark.parametrize("c2", [0.9, 0.1, 1e-3])
@pytest.mark.parametrize("first_step", [1e-3, 1.0, 30.0])
def test_strong_wolfe_step_satisfies_both_conditions(c2, first_step):
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    value0, grad0 = along(rosenbrock, x, torch.zeros(2, dtype=torch.float64))(0.0)
    d = -grad0 / grad0.norm()
    slope0 = float(grad0 @ d)
    c1 = 1e-4
    result = strong_wolfe(along(rosenbrock, x, d), d, value0, slope0, first_step, c1=c1, c2=c2)
    assert result.step > 0
    assert result.value <= value0 + c1 * result.step * slope0  # sufficient decrease
    assert abs(float(result.grad @ d)) <= c2 * abs(slope0)  # strong curvature condition


def test_strong_wolfe_is_exact_on_a_quadratic():
    """Cubic interpolation through a quadratic recovers it: the exact minimiser t = 2."""
    x, d = torch.tensor([0.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    result = strong_wolfe(
        along(lambda p: (p[0] - 2.0) ** 2, x, d), d, 4.0, -4.0, step=0.5, c2=1e-12
    )
    assert result.step == pytest.approx(2.0, abs=1e-12)


def test_backtracking_meets_armijo_and_refuses_an_ascent_direction():
    value_at = lambda t: (t - 0.1) ** 2  # noqa: E731
    result = backtracking(value_at, 0.01, -0.2, step=1.0, c1=1e-4, shrink=0.5)
    assert result.value <= 0.01 + 1e-4 * result.step * -0.2 and result.step == 0.125
    assert backtracking(lambda t: t, 0.0, 1.0).step == 0.0  # uphill: stay


def test_truncated_cg_solves_warm_starts_and_saves_geometric_iterates():
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(30, 30, dtype=torch.float64, generator=generator))
    a = q @ torch.diag(torch.logspace(0, 2, 30, dtype=torch.float64)) @ q.T
    b = torch.randn(30, dtype=torch.float64, generator=generator)
    solution = torch.linalg.solve(a, b)
    iterates = truncated_cg(lambda v: a @ v, b, torch.zeros(30, dtype=torch.float64), 200, 0.0)
    torch.testing.assert_close(iterates[-1][1], solution, rtol=1e-6, atol=1e-8)
    saved = [i for i, _, _ in iterates[:-1]]
    assert saved[:6] == [1, 2, 3, 4, 5, 7]  # ceil(1.3^j): 1, 2, 3, 4, 5, 7, 9, 11, ...
    # the returned curvature x.Ax is right for every saved iterate
    for _, x, curvature in iterates:
        assert curvature == pytest.approx(float(x @ a @ x), rel=1e-9)
    # warm start from the solution: nothing left to do
    cold = truncated_cg(lambda v: a @ v, b, torch.zeros_like(b), 200, 0.0)[-1][0]
    warm = truncated_cg(lambda v: a @ v, b, solution, 200, 0.0)[-1][0]
    assert warm <= 2 < 20 <= cold
    # Martens' relative-progress rule stops long before n iterations on an easy system
    assert truncated_cg(lambda v: a @ v, b, torch.zeros_like(b), 200)[-1][0] < 30


def test_truncated_cg_stops_at_negative_curvature():
    a = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    iterates = truncated_cg(
        lambda v: a @ v,
        torch.tensor([0.0, 1.0], dtype=torch.float64),
        torch.zeros(2, dtype=torch.float64),
        10,
    )
    assert iterates[-1][0] == 0 and not iterates[-1][1].any()


def test_cg_restarts_every_step_is_steepest_descent_with_line_search():
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    optimizer = create_optimizer("cg", [x], restart_every=1)

    def closure():
        optimizer.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    for _ in range(3):
        before = x.detach().clone()
        (grad,) = torch.autograd.grad(rosenbrock(before.requires_grad_(True)), before)
        optimizer.step(closure)
        moved = x.detach() - before
        cosine = float(moved @ -grad) / float(moved.norm() * grad.norm())
        assert cosine == pytest.approx(1.0, abs=1e-9)


def test_polak_ribiere_plus_clamps_beta_at_zero():
    from cnnlab.optim.conjugate_gradient import conjugate_beta

    g_prev = torch.tensor([1.0, 0.0])
    g = torch.tensor([0.5, 0.0])  # g.(g - g_prev) < 0: PR would be negative
    assert conjugate_beta("pr+", g, g_prev) == 0.0
    assert conjugate_beta("fr", g, g_prev) == pytest.approx(0.25)
    assert not math.isnan(conjugate_beta("pr+", torch.tensor([0.0, 2.0]), g_prev))
