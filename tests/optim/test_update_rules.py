"""Each registered first-order optimizer equals the lectures' update rule, written out here.

Where torch's form differs from the lectures' it is stated next to the test:
- momentum: lectures ``v <- a v - eta g; w <- w + v`` (seed 003, Polyak 1964), torch
  ``b <- mu b + g; w <- w - eta b``: equal while eta is constant (``v = -eta b``), not after
  eta changes (hence ``polyak``).
- Adagrad, RMSProp, Adam: lectures (seed 000) add nu outside the square root, as torch does
  (equal); seed 003 writes Adam with epsilon inside ``sqrt(v_hat + eps)`` and RMSProp with no
  epsilon: the first differs measurably for tiny gradients, the second equals torch with eps=0.
- Nesterov: torch updates the look-ahead point ``w + a v`` (Sutskever et al. 2013's
  reformulation): torch's parameters equal the lecture form's look-ahead point.
"""

import io

import pytest
import torch

from cnnlab.optim import create_optimizer, list_optimizers, optimizer_entry

STEPS = 12


def gradient(w: torch.Tensor) -> torch.Tensor:
    """Gradient of a fixed non-quadratic loss, so each step sees a new gradient."""
    return torch.sin(3 * w) + w**3 - 0.5


def loss_of(w: torch.Tensor) -> torch.Tensor:
    return (-torch.cos(3 * w) / 3 + w**4 / 4 - 0.5 * w).sum()


def run_registry(name: str, steps: int = STEPS, lr_schedule=None, **hp) -> list[torch.Tensor]:
    torch.manual_seed(0)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    optimizer = create_optimizer(name, [w], **hp)
    trajectory = []
    for k in range(steps):
        if lr_schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_schedule(k)
        optimizer.zero_grad()
        loss_of(w).backward()
        assert torch.allclose(w.grad, gradient(w.detach()))
        optimizer.step()
        trajectory.append(w.detach().clone())
    return trajectory


def start() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(5, dtype=torch.float64)


def assert_same(trajectory, reference) -> None:
    for got, expected in zip(trajectory, reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_sgd_is_the_plain_gradient_step():
    w, eps, reference = start(), 0.05, []
    for _ in range(STEPS):
        w = w - eps * gradient(w)
        reference.append(w)
    assert_same(run_registry("sgd", lr=eps), reference)


def lecture_momentum(lr_schedule, alpha=0.9):
    w, v, reference = start(), torch.zeros(5, dtype=torch.float64), []
    for k in range(STEPS):
        v = alpha * v - lr_schedule(k) * gradient(w)  # v <- a v - eta grad
        w = w + v  # w <- w + v
        reference.append(w)
    return reference


def test_momentum_equals_lecture_rule_while_lr_is_constant():
    constant = lambda k: 0.05  # noqa: E731
    assert_same(run_registry("momentum", lr=0.05, momentum=0.9), lecture_momentum(constant))
    assert_same(run_registry("polyak", lr=0.05, momentum=0.9), lecture_momentum(constant))


def test_polyak_keeps_lecture_form_when_lr_changes_and_torch_momentum_does_not():
    def schedule(k):
        return 0.05 if k < 5 else 0.005  # a step decay mid-run

    reference = lecture_momentum(schedule)
    assert_same(run_registry("polyak", lr_schedule=schedule), reference)
    torch_form = run_registry("momentum", lr_schedule=schedule)
    assert not torch.allclose(torch_form[-1], reference[-1], rtol=1e-3)
    # before the change they agree; after it torch rescales the whole velocity by the new lr
    assert_same(torch_form[:5], reference[:5])


def test_alexnet_rule_has_weight_decay_inside_the_velocity():
    eps, w, v, reference = 0.05, start(), torch.zeros(5, dtype=torch.float64), []
    for _ in range(STEPS):
        v = 0.9 * v - 0.0005 * eps * w - eps * gradient(w)  # Krizhevsky et al. 2012, sec. 5
        w = w + v
        reference.append(w)
    assert_same(run_registry("alexnet", lr=eps), reference)


def test_nesterov_parameters_are_the_lecture_look_ahead_point():
    alpha, eps = 0.9, 0.05
    w, v, look_ahead = start(), torch.zeros(5, dtype=torch.float64), []
    for _ in range(STEPS):
        v = alpha * v - eps * gradient(w + alpha * v)  # gradient at the look-ahead point
        w = w + v
        look_ahead.append(w + alpha * v)
    assert_same(run_registry("nesterov", lr=eps, momentum=alpha), look_ahead)


def test_adagrad_with_nu_outside_the_square_root():
    eps, nu = 0.1, 1e-7  # the lecture's nu = 1e-7 is the registry default
    assert optimizer_entry("adagrad").defaults["eps"] == nu
    w, a, reference = start(), torch.zeros(5, dtype=torch.float64), []
    for _ in range(STEPS):
        g = gradient(w)
        a = a + g * g
        w = w - eps / (a.sqrt() + nu) * g
        reference.append(w)
    assert_same(run_registry("adagrad", lr=eps), reference)


def lecture_rmsprop(eta, gamma, nu):
    w, a, reference = start(), torch.zeros(5, dtype=torch.float64), []
    for _ in range(STEPS):
        g = gradient(w)
        a = gamma * a + (1 - gamma) * g * g
        w = w - eta / (a.sqrt() + nu) * g
        reference.append(w)
    return reference


def test_rmsprop_in_both_lecture_forms():
    # seed 000: nu outside the root, as torch; seed 003: no nu at all (torch with eps=0)
    assert_same(run_registry("rmsprop", lr=0.01, alpha=0.9), lecture_rmsprop(0.01, 0.9, 1e-8))
    assert_same(
        run_registry("rmsprop", lr=0.01, alpha=0.9, eps=0.0), lecture_rmsprop(0.01, 0.9, 0.0)
    )


def lecture_adam(eps, beta1, beta2, nu, nu_inside_root=False, grad_scale=1.0):
    w, v, a, reference = start(), torch.zeros(5, dtype=torch.float64), 0, []
    a = torch.zeros(5, dtype=torch.float64)
    for t in range(1, STEPS + 1):
        g = grad_scale * gradient(w)
        v = beta1 * v + (1 - beta1) * g
        a = beta2 * a + (1 - beta2) * g * g
        v_hat, a_hat = v / (1 - beta1**t), a / (1 - beta2**t)
        denominator = (a_hat + nu).sqrt() if nu_inside_root else a_hat.sqrt() + nu
        w = w - eps * v_hat / denominator
        reference.append(w)
    return reference


def test_adam_with_bias_correction_equals_seed_000_form():
    entry = optimizer_entry("adam")
    assert entry.defaults["betas"] == (0.9, 0.999)
    assert_same(run_registry("adam", lr=0.01), lecture_adam(0.01, 0.9, 0.999, 1e-8))


def test_adam_epsilon_inside_the_root_seed_003_differs_for_tiny_gradients():
    tiny = 1e-5  # gradients this small make sqrt(a + eps) and sqrt(a) + eps disagree
    inside = lecture_adam(0.01, 0.9, 0.999, 1e-8, nu_inside_root=True, grad_scale=tiny)
    outside = lecture_adam(0.01, 0.9, 0.999, 1e-8, nu_inside_root=False, grad_scale=tiny)
    assert (inside[0] - start()).abs().max() < 0.9 * (outside[0] - start()).abs().max()


def test_adamw_decays_the_weights_outside_the_adam_step():
    eps, decay, beta1, beta2, nu = 0.01, 0.1, 0.9, 0.999, 1e-8
    w, v, a, reference = start(), 0.0, 0.0, []
    for t in range(1, STEPS + 1):
        g = gradient(w)
        w = w * (1 - eps * decay)  # decoupled decay (Loshchilov & Hutter 2019)
        v = beta1 * v + (1 - beta1) * g
        a = beta2 * a + (1 - beta2) * g * g
        w = w - eps * (v / (1 - beta1**t)) / ((a / (1 - beta2**t)).sqrt() + nu)
        reference.append(w)
    torch.manual_seed(0)
    p = torch.randn(5, dtype=torch.float64, requires_grad=True)
    optimizer = create_optimizer("adamw", [p], lr=eps, weight_decay=decay)
    for expected in reference:
        optimizer.zero_grad()
        loss_of(p).backward()
        optimizer.step()
        torch.testing.assert_close(p.detach(), expected, rtol=1e-10, atol=1e-12)


def test_every_optimizer_is_registered_with_its_facts():
    names = {e.name for e in list_optimizers()}
    expected = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"}
    expected |= {"polyak", "alexnet", "newton", "bfgs", "cg", "hessian_free"}
    assert expected <= names
    for entry in list_optimizers():
        assert entry.order in (1, 2) and entry.state and entry.source and entry.summary
        assert entry.needs_closure == (entry.order == 2), entry.name


@pytest.mark.parametrize("name", ["polyak", "alexnet"])
def test_first_order_state_dict_round_trip_continues_identically(name):
    def make():
        torch.manual_seed(0)
        w = torch.randn(5, dtype=torch.float64, requires_grad=True)
        return w, create_optimizer(name, [w], lr=0.05)

    def advance(w, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            loss_of(w).backward()
            optimizer.step()

    w, optimizer = make()
    advance(w, optimizer, 4)
    buffer = io.BytesIO()
    torch.save({"w": w.detach(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # as a checkpoint is loaded: no code runs
    advance(w, optimizer, 4)
    w2, optimizer2 = make()
    with torch.no_grad():
        w2.copy_(saved["w"])
    optimizer2.load_state_dict(saved["optimizer"])
    advance(w2, optimizer2, 4)
    assert torch.equal(w.detach(), w2.detach())


def test_registry_rejects_unknown_hyperparameters_and_names():
    from cnnlab.errors import ConfigError, UnknownNameError

    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(ConfigError, match="takes no momentum; it takes lr and weight_decay"):
        create_optimizer("sgd", [w], momentum=0.9)
    with pytest.raises(ConfigError, match="lr must be a number > 0, got 0"):
        create_optimizer("adam", [w], lr=0)
    with pytest.raises(UnknownNameError, match="Did you mean nesterov"):
        create_optimizer("nesterv", [w])


def test_alexnet_weight_decay_defaults_to_the_papers_and_can_be_overridden():
    w = torch.zeros(3, requires_grad=True)
    assert create_optimizer("alexnet", [w]).param_groups[0]["weight_decay"] == 0.0005
    assert create_optimizer("alexnet", [w], weight_decay=0.0).param_groups[0]["weight_decay"] == 0
    assert create_optimizer("polyak", [w]).param_groups[0]["weight_decay"] == 0.0
