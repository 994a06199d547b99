"""Newton, BFGS, nonlinear CG, L-BFGS and Hessian-free against closed forms and scipy."""

import io

import numpy as np
import pytest
import scipy.optimize
import torch

from cnnlab.errors import ConfigError
from cnnlab.optim import clip_gradients, create_optimizer
from cnnlab.optim._objective import FlatObjective
from cnnlab.optim.bfgs import bfgs_inverse_update

torch.set_num_threads(1)


def spd_quadratic(n: int, seed: int = 0):
    """``f(x) = x.Ax/2 - b.x`` with eigenvalues spread over [1, 20]; minimum ``A^-1 b``."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=generator))
    a = q @ torch.diag(torch.linspace(1.0, 20.0, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, dtype=torch.float64, generator=generator)
    return a, b, torch.linalg.solve(a, b)


def minimise(name: str, loss_fn, x0, steps: int, **hp):
    x = x0.clone().requires_grad_(True)
    optimizer = create_optimizer(name, [x], **hp)

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    path = []
    for _ in range(steps):
        optimizer.step(closure)
        path.append(x.detach().clone())
    return x.detach(), optimizer, path


def test_newton_minimises_a_strictly_convex_quadratic_in_one_step():
    a, b, solution = spd_quadratic(6)
    x, _, _ = minimise(
        "newton", lambda x: 0.5 * x @ a @ x - b @ x, torch.zeros(6, dtype=a.dtype), 1
    )
    torch.testing.assert_close(x, solution, rtol=1e-10, atol=1e-12)


def test_newton_with_weight_decay_solves_the_regularised_quadratic():
    a, b, _ = spd_quadratic(4)
    x = torch.zeros(4, dtype=a.dtype, requires_grad=True)
    optimizer = create_optimizer("newton", [x], weight_decay=0.5)

    def closure():
        return 0.5 * x @ a @ x - b @ x  # a closure that returns the loss without backward()

    optimizer.step(closure)
    expected = torch.linalg.solve(a + 0.5 * torch.eye(4, dtype=a.dtype), b)
    torch.testing.assert_close(x.detach(), expected, rtol=1e-10, atol=1e-12)


def test_exact_hessian_matches_torch_func_on_a_network():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    model = model.double()
    inputs, targets = torch.randn(7, 3, dtype=torch.float64), torch.randint(0, 2, (7,))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss_of_flat(flat):
        pieces = torch.split(flat, [s.numel() for s in shapes])
        params = {n: t.view(s) for n, t, s in zip(names, pieces, shapes, strict=True)}
        logits = torch.func.functional_call(model, params, (inputs,))
        return torch.nn.functional.cross_entropy(logits, targets)

    objective = FlatObjective([{"params": list(model.parameters())}])
    reference = torch.func.hessian(loss_of_flat)(objective.get())

    def closure():
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()  # torch's closure convention: the graph is kept for curvature anyway
        return loss

    objective.value_and_grad_with_graph(closure)
    torch.testing.assert_close(objective.hessian(), reference, rtol=1e-9, atol=1e-12)
    v = torch.randn(objective.numel, dtype=torch.float64)
    torch.testing.assert_close(objective.hvp(v), reference @ v, rtol=1e-9, atol=1e-12)


def test_gauss_newton_product_matches_jacobian_form():
    """``G v = J^T H_L J v`` against J from torch.func.jacrev and H_L from torch.func.hessian."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    model = model.double()
    inputs, targets = torch.randn(5, 3, dtype=torch.float64), torch.randint(0, 3, (5,))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    objective = FlatObjective([{"params": list(model.parameters()), "weight_decay": 0.01}])

    def logits_of_flat(flat):
        pieces = torch.split(flat, [s.numel() for s in shapes])
        params = {n: t.view(s) for n, t, s in zip(names, pieces, shapes, strict=True)}
        return torch.func.functional_call(model, params, (inputs,)).reshape(-1)

    theta = objective.get()
    jacobian = torch.func.jacrev(logits_of_flat)(theta)
    logits = logits_of_flat(theta).detach()
    loss_hessian = torch.func.hessian(
        lambda z: torch.nn.functional.cross_entropy(z.view(5, 3), targets)
    )(logits)
    reference = jacobian.T @ loss_hessian @ jacobian + 0.01 * torch.eye(len(theta)).double()

    def closure():
        return torch.nn.functional.cross_entropy(model(inputs), targets)

    objective.value_and_grad_with_graph(closure, gauss_newton=True)
    assert objective.uses_gauss_newton
    v = torch.randn(len(theta), dtype=torch.float64)
    torch.testing.assert_close(objective.hvp(v), reference @ v, rtol=1e-9, atol=1e-12)
    # a loss built by hand is not one recognised convex loss: the Hessian is used instead
    objective.value_and_grad_with_graph(lambda: model(inputs).pow(2).mean(), gauss_newton=True)
    assert not objective.uses_gauss_newton


def test_bfgs_update_is_the_lecture_formula():
    torch.manual_seed(1)
    m = torch.randn(5, 5, dtype=torch.float64)
    h = m @ m.T + torch.eye(5, dtype=torch.float64)
    s, y = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    y = y if y @ s > 0 else -y
    eye, ys = torch.eye(5, dtype=torch.float64), y @ s
    lecture = (eye - torch.outer(s, y) / ys) @ h @ (eye - torch.outer(y, s) / ys)
    lecture = lecture + torch.outer(s, s) / ys
    torch.testing.assert_close(bfgs_inverse_update(h, s, y), lecture, rtol=1e-12, atol=1e-12)
    # the secant condition H^-1 y = s that makes it a quasi-Newton update
    torch.testing.assert_close(bfgs_inverse_update(h, s, y) @ y, s, rtol=1e-12, atol=1e-12)


N = 6


@pytest.mark.parametrize(
    ("name", "hp"), [("bfgs", {}), ("cg", {"beta": "fr"}), ("cg", {"beta": "pr+"})]
)
def test_quadratic_minimum_in_at_most_n_steps_with_exact_line_search(name, hp):
    """Finite termination of CG and BFGS on a quadratic with exact line searches (Nocedal &
    Wright Thm. 5.2 and 6.4); c2 = 1e-10 makes the strong-Wolfe search exact to rounding (and
    c1 < c2, which a Wolfe point's existence needs)."""
    a, b, solution = spd_quadratic(N, seed=3)
    x, optimizer, path = minimise(
        name,
        lambda x: 0.5 * x @ a @ x - b @ x,
        torch.zeros(N, dtype=a.dtype),
        N,
        c1=1e-11,
        c2=1e-10,
        **hp,
    )
    torch.testing.assert_close(x, solution, rtol=1e-8, atol=1e-9)
    assert (path[N - 2] - solution).norm() > 1e-4  # not there one step earlier: it took n
    if name == "bfgs":  # after n exact steps on a quadratic, BFGS's H^-1 is exactly A^-1
        state = optimizer.state[optimizer.param_groups[0]["params"][0]]
        torch.testing.assert_close(
            state["inverse_hessian"], torch.linalg.inv(a), rtol=1e-6, atol=1e-8
        )


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


ROSENBROCK_START = torch.tensor([-1.2, 1.0], dtype=torch.float64)

# cnnlab optimizer -> scipy.optimize.minimize method of the same family (Newton: scipy's
# exact-Hessian trust-region Newton). "Comparable" = at most 3x scipy's iteration count.
SCIPY_METHODS = {"bfgs": "BFGS", "cg": "CG", "lbfgs": "L-BFGS-B", "newton": "trust-exact"}


@pytest.mark.parametrize("name", list(SCIPY_METHODS))
def test_rosenbrock_converges_in_iterations_comparable_to_scipy(name):
    reference = scipy.optimize.minimize(
        scipy.optimize.rosen,
        ROSENBROCK_START.numpy(),
        method=SCIPY_METHODS[name],
        jac=scipy.optimize.rosen_der,
        **({"hess": scipy.optimize.rosen_hess} if name == "newton" else {}),
    )
    assert reference.success and np.allclose(reference.x, 1.0, atol=1e-4)
    x = ROSENBROCK_START.clone().requires_grad_(True)
    tolerances = {"tolerance_grad": 1e-10, "tolerance_change": 0.0} if name == "lbfgs" else {}
    optimizer = create_optimizer(name, [x], **tolerances)

    def closure():
        optimizer.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    iterations = 0
    while (x.detach() - 1).abs().max() > 1e-6 and iterations < 10 * reference.nit:
        optimizer.step(closure)
        state = optimizer.state[x]
        iterations = state["n_iter"] if name == "lbfgs" else iterations + 1
    assert (x.detach() - 1).abs().max() <= 1e-6
    assert iterations <= 3 * reference.nit, (iterations, reference.nit)


def test_newton_refuses_the_lectures_million_parameter_hessian():
    weights = torch.nn.Parameter(torch.empty(10**6, device="meta"))
    with pytest.raises(ConfigError) as error:
        create_optimizer("newton", [weights])
    message = str(error.value)
    # lecture: "store the Hessian 1x10^6 ... 4 bytes ... 3.6 TB": (10^6)^2 x 4 B = 3.6 TiB
    assert "4,000,000,000,000 bytes" in message and "3.6 TiB" in message
    assert "force=True" in message and "hessian_free" in message
    with pytest.raises(ConfigError, match="3.6 TiB"):
        create_optimizer("bfgs", [weights])
    assert create_optimizer("newton", [weights], force=True) is not None  # meta: no memory


def test_memory_limit_is_adjustable():
    x = torch.zeros(10, dtype=torch.float64, requires_grad=True)  # Hessian: 800 bytes
    with pytest.raises(ConfigError, match="800 bytes"):
        create_optimizer("newton", [x], max_memory=500)
    create_optimizer("newton", [x], max_memory=1000)


def save_and_load(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", ["newton", "bfgs", "cg", "hessian_free", "lbfgs"])
def test_state_dict_round_trip_mid_run_continues_identically(name):
    def make(x0):
        x = x0.clone().requires_grad_(True)
        optimizer = create_optimizer(name, [x], **({"max_iter": 2} if name == "lbfgs" else {}))

        def closure():
            optimizer.zero_grad()
            loss = rosenbrock(x) + 0.1 * x.pow(4).sum()
            loss.backward()
            return loss

        return x, optimizer, closure

    x, optimizer, closure = make(ROSENBROCK_START)
    for _ in range(3):
        optimizer.step(closure)
    saved = save_and_load({"x": x.detach(), "optimizer": optimizer.state_dict()})
    for _ in range(3):
        optimizer.step(closure)
    x2, optimizer2, closure2 = make(saved["x"])
    optimizer2.load_state_dict(saved["optimizer"])
    for _ in range(3):
        optimizer2.step(closure2)
    assert torch.equal(x.detach(), x2.detach())


def digits_problem(samples: int = 600):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images[:samples], dtype=torch.float32).unsqueeze(1) / 16
    return images, torch.tensor(digits.target[:samples])


def small_lenet():
    """A LeNet-shaped net for 8x8 digits: conv-tanh-pool, conv-tanh, two fully connected."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(6, 12, 3),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(12 * 2 * 2, 24),
        torch.nn.Tanh(),
        torch.nn.Linear(24, 10),
    )


def test_hessian_free_beats_sgd_at_equal_gradient_evaluations_in_parameter_memory():
    """Full batch; an evaluation is a closure call or a Gauss-Newton-vector product (each costs
    about one gradient). SGD gets the best of three learning rates."""
    images, labels = digits_problem()
    budget = 120
    model = small_lenet()
    numel = sum(p.numel() for p in model.parameters())
    optimizer = create_optimizer("hessian_free", model, cg_max_iter=10)  # short CG: small budget

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        return loss

    state = optimizer.state[next(model.parameters())]
    while state.get("evaluations", 0) < budget:
        optimizer.step(closure)
    used = state["evaluations"]
    with torch.no_grad():
        hf_loss = float(torch.nn.functional.cross_entropy(model(images), labels))
    # memory O(parameters): the state between steps is a single parameter-sized vector
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    assert sum(t.numel() for t in tensors) <= numel

    sgd_losses = []
    for lr in (0.1, 0.3, 1.0):
        model = small_lenet()
        sgd = create_optimizer("sgd", model, lr=lr)
        for _ in range(used):
            sgd.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            sgd.step()
        with torch.no_grad():
            sgd_losses.append(float(torch.nn.functional.cross_entropy(model(images), labels)))
    assert hf_loss < min(sgd_losses), (hf_loss, sgd_losses)


def test_hessian_free_solves_least_squares():
    """A convex quadratic loss: HF must land on the normal equations' solution."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(40, 5, dtype=torch.float64, generator=generator)
    targets = torch.randn(40, dtype=torch.float64, generator=generator)
    reference = torch.linalg.lstsq(features, targets.unsqueeze(1)).solution.squeeze(1)
    w, _, _ = minimise(
        "hessian_free",
        lambda w: 0.5 * (features @ w - targets).pow(2).mean(),
        torch.zeros(5, dtype=torch.float64),
        15,
    )
    torch.testing.assert_close(w, reference, rtol=1e-6, atol=1e-8)


def test_clip_gradients_by_norm_and_by_value():
    a = torch.zeros(3, requires_grad=True)
    b = torch.zeros(4, requires_grad=True)
    a.grad, b.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 4.0, 0.0, 0.0])
    total = clip_gradients([a, b], max_norm=1.0)
    assert float(total) == pytest.approx(5.0)
    assert float(torch.cat([a.grad, b.grad]).norm()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(a.grad, torch.tensor([0.6, 0.0, 0.0]), rtol=1e-5, atol=1e-6)
    layer = torch.nn.Linear(3, 1, bias=False)
    layer.weight.grad = torch.tensor([[3.0, -0.5, -7.0]])
    assert clip_gradients(layer, max_value=1.0) is None
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[1.0, -0.5, -1.0]]))
    with pytest.raises(ConfigError, match="max_norm must be > 0"):
        clip_gradients([a], max_norm=0)


def test_clipping_inside_the_closure_bounds_bfgs_first_step():
    """A closure that clips after backward(): gradient-only methods follow the clipped gradient."""
    x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    optimizer = create_optimizer("cg", [x])

    def closure():
        optimizer.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        clip_gradients([x], max_value=1e-3)
        return loss

    optimizer.step(closure)
    assert (x.detach() - ROSENBROCK_START).abs().max() < 1e-2


@pytest.mark.parametrize(
    "name, expected",
    [
        ("newton", {"lr": 1.0, "damping": 0.0, "max_memory": 2 * 1024**3, "force": False}),
        (
            "bfgs",
            {"lr": 1.0, "c1": 1e-4, "c2": 0.9, "tolerance_grad": 1e-10}
            | {"max_memory": 2 * 1024**3, "force": False},
        ),
        (
            "cg",
            {"lr": 1.0, "beta": "pr+", "c1": 1e-4, "c2": 0.1, "restart_every": 0}
            | {"tolerance_grad": 1e-10},
        ),
        (
            "hessian_free",
            {"lr": 1.0, "damping": 0.1, "cg_max_iter": 50, "cg_decay": 0.95}
            | {"curvature": "gauss_newton"},
        ),
    ],
)
def test_closure_methods_take_their_signatures_defaults_everywhere(name, expected):
    """Written once in each __init__: the registry shows them, the groups carry exactly them."""
    from cnnlab.optim import optimizer_entry

    entry = optimizer_entry(name)
    assert entry.defaults == expected and entry.order == 2 and entry.needs_closure
    optimizer = create_optimizer(name, [torch.zeros(3, requires_grad=True)], lr=0.5)
    assert optimizer.defaults == expected | {"lr": 0.5}
    assert set(optimizer.param_groups[0]) == {"params", "weight_decay", *expected}
