"""The lectures' first-order optimizers that torch.optim already implements, with their defaults.

Each docstring gives the lecture's update rule and where torch's form differs.
"""

from __future__ import annotations

import torch

from cnnlab.optim._objective import FlatObjective, GuardBackward, begin_step
from cnnlab.optim.registry import register_optimizer
from cnnlab.validate import Number


@register_optimizer(
    "sgd",
    order=1,
    state="none",
    defaults={"lr": 0.01},
    source="torch.optim.SGD",
    summary="theta <- theta - eps * g",
)
def sgd(groups, lr):
    """Plain stochastic gradient descent."""
    return torch.optim.SGD(groups, lr=lr)


@register_optimizer(
    "momentum",
    order=1,
    state="1x (velocity)",
    defaults={"lr": 0.01, "momentum": 0.9},
    source="torch.optim.SGD",
    summary="v <- a v - eps g; theta <- theta + v (torch: v <- a v + g; theta -= eps v)",
)
def momentum(groups, lr, momentum):
    """Heavy-ball momentum.

    The lecture writes ``v <- alpha v - eps g; theta <- theta + v``; torch keeps
    ``v <- mu v + g; theta <- theta - eps v``. The two agree while eps is constant.
    """
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


@register_optimizer(
    "nesterov",
    order=1,
    state="1x (velocity)",
    defaults={"lr": 0.01, "momentum": 0.9},
    source="torch.optim.SGD",
    summary="gradient taken at the look-ahead point theta + a v",
    domains={"momentum": Number(low=0, high=1, low_open=True, high_open=True)},
)
def nesterov(groups, lr, momentum):
    """Nesterov momentum, in torch's (Sutskever) reformulation."""
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)


@register_optimizer(
    "adagrad",
    order=1,
    state="1x (sum of g^2)",
    defaults={"lr": 0.01, "eps": 1e-7},
    source="torch.optim.Adagrad",
    summary="a <- a + g*g; theta <- theta - eps/(sqrt(a) + nu) * g",
)
def adagrad(groups, lr, eps):
    """Adagrad with the lecture's nu = 1e-7 added outside the square root, as torch does."""
    return torch.optim.Adagrad(groups, lr=lr, eps=eps)


@register_optimizer(
    "rmsprop",
    order=1,
    state="1x (mean of g^2)",
    defaults={"lr": 0.001, "alpha": 0.99, "eps": 1e-8},
    source="torch.optim.RMSprop",
    summary="a <- b a + (1-b) g*g; theta <- theta - eps/(sqrt(a) + nu) * g",
    domains={"eps": Number(low=0)},  # the lectures also write it without nu (eps = 0)
)
def rmsprop(groups, lr, alpha, eps):
    """RMSProp: Adagrad with an exponentially decaying sum of squares."""
    return torch.optim.RMSprop(groups, lr=lr, alpha=alpha, eps=eps)


@register_optimizer(
    "adam",
    order=1,
    state="2x (moments)",
    defaults={"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
    source="torch.optim.Adam",
    summary="bias-corrected first and second moments",
)
def adam(groups, lr, betas, eps):
    """Adam with bias correction."""
    return torch.optim.Adam(groups, lr=lr, betas=tuple(betas), eps=eps)


@register_optimizer(
    "adamw",
    order=1,
    state="2x (moments)",
    defaults={"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
    source="torch.optim.AdamW",
    summary="Adam with decoupled weight decay",
)
def adamw(groups, lr, betas, eps):
    """Adam with weight decay applied to the weights directly, not through the gradient."""
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


class LBFGS(torch.optim.LBFGS):
    """torch's L-BFGS, taking the closure's objective as the other closure optimizers do.

    A closure may return the loss without calling ``backward()`` (it is called here then); each
    group's ``weight_decay``, which torch's L-BFGS ignores, is added to the objective as
    ``weight_decay / 2 * ||w||^2``; gradients of channels_last weights are made contiguous,
    which torch's flat view of them requires. torch's L-BFGS takes one group and caches its
    parameter list on the instance, so a group added later never trains and a deep copy or
    unpickled copy cannot step; here several groups are allowed (they must agree on all but
    ``weight_decay``, as for cnnlab's own closure methods) and the list is read from the groups
    at every step, restarting the history when it changes length.
    """

    def __init__(self, groups: list[dict], **options):
        options.setdefault("max_eval", options.get("max_iter", 20) * 5 // 4)
        # torch.optim.LBFGS.__init__ refuses several groups; the bookkeeping it does is per step
        torch.optim.Optimizer.__init__(self, groups, {**options, "maximize": False})
        FlatObjective(self.param_groups, "lbfgs")  # refuse unusable parameters now

    def step(self, closure):
        closure, objective, _, _ = begin_step(self, "lbfgs", closure)  # restarts the history
        self._params, self._numel_cache = objective.params, None
        decays = [(p, wd) for wd, ps in objective.groups for p in ps]

        def objective_with_decay():
            for p, _ in decays:
                p.grad = None
            with GuardBackward("lbfgs"):
                loss = closure()
            if all(p.grad is None for p, _ in decays):
                objective.checked_loss(loss, needs_grad=True).backward()
            with torch.no_grad():
                for p, decay in decays:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    elif not p.grad.is_contiguous():
                        p.grad = p.grad.contiguous()  # torch's L-BFGS views grads flat
                    if decay:
                        p.grad.add_(p, alpha=decay)
                        loss = loss + 0.5 * decay * p.pow(2).sum()
            return loss

        groups = self.param_groups
        self.param_groups = [{**groups[0], "params": objective.params}]  # torch's takes one
        try:
            return super().step(objective_with_decay)
        finally:
            self.param_groups = groups


register_optimizer(
    "lbfgs",
    order=2,
    state="2m x (m pairs)",
    defaults={
        "lr": 1.0,
        "history_size": 10,
        "max_iter": 20,
        "line_search_fn": "strong_wolfe",
        "tolerance_grad": 1e-7,
        "tolerance_change": 1e-9,
    },
    source="torch.optim.LBFGS",
    summary="limited-memory BFGS; needs a closure and full or large batches",
    needs_closure=True,
)(LBFGS)
