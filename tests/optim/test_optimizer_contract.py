"""Every registered optimizer keeps torch.optim's contract, or refuses a point in one clear line.

The points are those PyTorch's own optimizer tests check (test/test_optim.py:
``test_state_dict_deterministic``, ``test_param_groups_lr``, ``test_param_groups_weight_decay``,
``test_add_param_group``, ``test_deepcopy_copies_all_public_attrs``, pickling and the
lr schedulers), parametrised here over every entry of ``list_optimizers()``. Each check
compares against an independent run: an optimizer built with the value from the start, the
same optimizer never interrupted, or one optimizer per group.
"""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.optim import create_optimizer, list_optimizers, optimizer_entry
from cnnlab.optim.registry import HYPERPARAMETER_DOMAINS
from cnnlab.validate import Flag, Items, Number, OneOf

NAMES = [entry.name for entry in list_optimizers()]
#: the flat methods step all parameters as one vector with one line search
FLAT = {entry.name for entry in list_optimizers() if entry.needs_closure}
STEPS = 3


def loss_of(*tensors: torch.Tensor) -> torch.Tensor:
    """A separable, non-quadratic loss: each tensor's part depends on that tensor only."""
    return sum((-torch.cos(3 * t) / 3 + t**4 / 4 - 0.5 * t).sum() for t in tensors)


def make_params(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(5, generator=generator, dtype=torch.float64).to(dtype).requires_grad_()
    b = torch.randn(3, generator=generator, dtype=torch.float64).to(dtype).requires_grad_()
    return w, b


def step(optimizer: torch.optim.Optimizer, *tensors: torch.Tensor) -> None:
    """One step with a torch-convention closure, which every optimizer accepts."""

    def closure():
        optimizer.zero_grad()
        loss = loss_of(*tensors)
        loss.backward()
        return loss

    optimizer.step(closure)


def run(optimizer, tensors, steps: int = STEPS) -> list[torch.Tensor]:
    for _ in range(steps):
        step(optimizer, *tensors)
    return [t.detach().clone() for t in tensors]


def assert_equal(got: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b), (a, b)


def lr_of(name: str) -> float:
    """A rate each optimizer moves well with in a few steps of ``loss_of``."""
    return 0.5 if name in FLAT else 0.05


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_identically(name):
    w, b = make_params()
    optimizer = create_optimizer(name, [w, b], lr=lr_of(name))
    run(optimizer, (w, b))
    buffer = io.BytesIO()
    torch.save({"params": [w.detach(), b.detach()], "state": optimizer.state_dict()}, buffer)
    uninterrupted = run(optimizer, (w, b))
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # as a checkpoint is loaded: no code runs
    w2, b2 = (t.clone().requires_grad_() for t in saved["params"])
    resumed = create_optimizer(name, [w2, b2], lr=lr_of(name))
    resumed.load_state_dict(saved["state"])
    assert_equal(run(resumed, (w2, b2)), uninterrupted)


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_trains_the_added_parameters(name):
    w, b = make_params()
    optimizer = create_optimizer(name, [w], lr=lr_of(name))
    run(optimizer, (w, b), steps=1)
    optimizer.add_param_group({"params": [b]})
    before = loss_of(b).item()
    run(optimizer, (w, b))
    assert loss_of(b).item() < before - 1e-3  # the added parameters train


@pytest.mark.parametrize("name", NAMES)
def test_every_groups_lr_is_used_or_refused(name):
    """First-order: each group moves as an optimizer of its own with that group's rate would
    (the loss is separable). Flat methods refuse differing rates in one line."""
    w, b = make_params()
    groups = [{"params": [w], "lr": lr_of(name)}, {"params": [b], "lr": lr_of(name) / 4}]
    optimizer = create_optimizer(name, groups)
    if name in FLAT:
        with pytest.raises(ConfigError, match=f"{name} steps all parameters as one vector.*lr"):
            step(optimizer, w, b)
        return
    together = run(optimizer, (w, b))
    w1, b1 = make_params()
    alone = [
        run(create_optimizer(name, [w1], lr=lr_of(name)), (w1,))[0],
        run(create_optimizer(name, [b1], lr=lr_of(name) / 4), (b1,))[0],
    ]
    assert_equal(together, alone)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("how", ["by hand", "load_state_dict"])
def test_a_changed_weight_decay_is_the_one_used(name, how):
    w, b = make_params()
    reference = run(create_optimizer(name, [w, b], lr=lr_of(name), weight_decay=0.3), (w, b))
    w, b = make_params()
    optimizer = create_optimizer(name, [w, b], lr=lr_of(name), weight_decay=0.0)
    if how == "by hand":
        optimizer.param_groups[0]["weight_decay"] = 0.3
    else:
        other = create_optimizer(name, make_params(), lr=lr_of(name), weight_decay=0.3)
        optimizer.load_state_dict(other.state_dict())
    assert optimizer.param_groups[0]["weight_decay"] == 0.3
    assert_equal(run(optimizer, (w, b)), reference)


@pytest.mark.parametrize("name", NAMES)
def test_weight_decay_reaches_groups_that_carry_none(name):
    w, b = make_params()
    reference = run(create_optimizer(name, [w, b], lr=lr_of(name), weight_decay=0.3), (w, b))
    w, b = make_params()
    optimizer = create_optimizer(name, [{"params": [w, b]}], lr=lr_of(name), weight_decay=0.3)
    assert optimizer.param_groups[0]["weight_decay"] == 0.3
    assert_equal(run(optimizer, (w, b)), reference)


def test_alexnet_keeps_its_own_weight_decay_for_plain_groups():
    w, _ = make_params()
    optimizer = create_optimizer("alexnet", [{"params": [w]}])
    assert optimizer.param_groups[0]["weight_decay"] == 0.0005  # Krizhevsky et al. 2012, sec. 5


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_optimizer_steps_like_the_original(name, how):
    w, b = make_params()
    optimizer = create_optimizer(name, [w, b], lr=lr_of(name))
    run(optimizer, (w, b), steps=2)
    bundle = {"params": (w, b), "optimizer": optimizer}
    if how == "deepcopy":
        copied = copy.deepcopy(bundle)
    else:
        copied = pickle.loads(pickle.dumps(bundle))
    assert_equal(run(copied["optimizer"], copied["params"]), run(optimizer, (w, b)))


@pytest.mark.parametrize("name", NAMES)
def test_a_scheduler_changes_every_later_step(name):
    """After the first step the rate is cut tenfold: the steps from then on must follow it.

    The reference sets the rate by hand to what the scheduler sets; and the cut must make a
    difference (cg used to ignore lr after its first line search)."""

    # one iteration per lbfgs step, lest its 20 reach the minimum in the first step
    hp = {"max_iter": 1} if name == "lbfgs" else {}

    def trajectory(cut: str) -> list[torch.Tensor]:
        w, b = make_params()
        optimizer = create_optimizer(name, [w, b], lr=lr_of(name), **hp)
        start = [group["lr"] for group in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1], gamma=0.1)
        points = []
        for _ in range(STEPS):
            if cut == "by hand" and points:
                for group, lr in zip(optimizer.param_groups, start, strict=True):
                    group["lr"] = lr * 0.1
            step(optimizer, w, b)
            if cut == "scheduler":
                scheduler.step()
            points.append(w.detach().clone())
        return points

    scheduled, by_hand, constant = trajectory("scheduler"), trajectory("by hand"), trajectory("no")
    for got, expected in zip(scheduled, by_hand, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    assert torch.equal(scheduled[0], constant[0])
    assert not torch.allclose(scheduled[-1], constant[-1], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_no_trainable_parameters_is_one_clear_error(name):
    frozen = torch.zeros(3, requires_grad=False)
    for params in ([], [frozen], [{"params": [frozen]}]):
        with pytest.raises(ConfigError, match="no trainable parameters"):
            create_optimizer(name, params)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.complex64])
def test_other_dtypes_step_or_are_refused_in_one_line(name, dtype):
    w = torch.ones(3, dtype=dtype, requires_grad=True)
    try:
        optimizer = create_optimizer(name, [w])

        def closure():
            optimizer.zero_grad()
            loss = (w * w.conj()).real.sum() if dtype.is_complex else (w * w).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    except CnnlabError as error:
        assert "\n" not in str(error) and "float32 or float64" in str(error)
    else:
        assert name not in FLAT  # the flat methods refuse: they need float32/64 precision
        assert torch.isfinite(torch.view_as_real(w) if dtype.is_complex else w).all()


@pytest.mark.parametrize(
    ("name", "backward"),
    [(name, backward) for name in sorted(FLAT) for backward in (True, False)]
    + [("polyak", True), ("alexnet", True)],  # cnnlab's first-order ones guard backward()
)
def test_a_loss_that_does_not_depend_on_the_parameters_is_one_clear_error(name, backward):
    w, _ = make_params()
    optimizer = create_optimizer(name, [w])

    def closure():
        optimizer.zero_grad()
        loss = loss_of(w.detach())
        if backward:
            loss.backward()
        return loss

    with pytest.raises(ConfigError, match="does not depend on the optimizer's parameters"):
        optimizer.step(closure)


def out_of_domain(domain) -> list:
    """Values the domain refuses: past each bound, the wrong type, None."""
    if isinstance(domain, Number):
        bad = ["0.1", None, float("nan")]
        if domain.low is not None:
            bad.append(domain.low if domain.low_open else domain.low - 1)
        if domain.high is not None:
            bad.append(domain.high if domain.high_open else domain.high + 1)
        if domain.integer:
            bad.append(2.5)
        return bad
    if isinstance(domain, Items):
        return [(0.9,), (1.5, 0.9), 0.9]
    if isinstance(domain, OneOf):
        return ["nonsense", 3]
    if isinstance(domain, Flag):
        return ["yes", 1]
    raise AssertionError(domain)


CASES = [
    (name, key, value)
    for name in NAMES
    for key in [*optimizer_entry(name).defaults, "weight_decay"]
    for value in out_of_domain(
        {**HYPERPARAMETER_DOMAINS, **optimizer_entry(name).domains}.get(key, Flag())
    )
    if key in HYPERPARAMETER_DOMAINS and not (key == "weight_decay" and value is None)
]  # weight_decay=None asks for the optimizer's own default


@pytest.mark.parametrize(("name", "key", "value"), CASES)
def test_every_hyperparameter_outside_its_domain_is_refused_where_created(name, key, value):
    w, _ = make_params()
    with pytest.raises(ConfigError, match=f"optimizer '{name}': {key} must be") as error:
        create_optimizer(name, [w], **{key: value})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "hp", "message"),
    [
        ("polyak", {"momentum": 1.5}, "momentum must be a number in \\[0, 1\\)"),
        ("alexnet", {"momentum": 1.5}, "momentum must be a number in \\[0, 1\\)"),
        ("hessian_free", {"cg_max_iter": 0}, "cg_max_iter must be an integer >= 1"),
        ("bfgs", {"c1": 0.5, "c2": 0.1}, "0 < c1 < c2 < 1"),
        ("cg", {"c1": 0.2, "c2": 0.2}, "0 < c1 < c2 < 1"),
        ("newton", {"damping": -1.0}, "damping must be a number >= 0"),
        ("hessian_free", {"damping": -0.1}, "damping must be a number >= 0"),
        ("nesterov", {"momentum": 0.0}, "momentum must be a number in \\(0, 1\\)"),
    ],
)
def test_the_reported_bad_hyperparameters_are_refused(name, hp, message):
    w, _ = make_params()
    with pytest.raises(ConfigError, match=message):
        create_optimizer(name, [w], **hp)


def test_a_group_value_outside_its_domain_is_refused_too():
    w, _ = make_params()
    with pytest.raises(ConfigError, match="momentum must be"):
        create_optimizer("polyak", [{"params": [w], "momentum": 1.5}])
