"""The lectures' first-order optimizers that torch.optim already implements, with their defaults.

Each docstring gives the lecture's update rule and where torch's form differs.
"""

from __future__ import annotations

import torch

from cnnlab.optim.registry import register_optimizer


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
    source="torch.optim.SGD(momentum)",
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
    source="torch.optim.SGD(nesterov=True)",
    summary="gradient taken at the look-ahead point theta + a v",
)
def nesterov(groups, lr, momentum):
    """Nesterov momentum, in torch's (Sutskever) reformulation."""
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)


@register_optimizer(
    "adagrad",
    order=1,
    state="1x (sum of squares)",
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
    state="1x (mean square)",
    defaults={"lr": 0.001, "alpha": 0.99, "eps": 1e-8},
    source="torch.optim.RMSprop",
    summary="a <- b a + (1-b) g*g; theta <- theta - eps/(sqrt(a) + nu) * g",
)
def rmsprop(groups, lr, alpha, eps):
    """RMSProp: Adagrad with an exponentially decaying sum of squares."""
    return torch.optim.RMSprop(groups, lr=lr, alpha=alpha, eps=eps)


@register_optimizer(
    "adam",
    order=1,
    state="2x (first and second moments)",
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
    state="2x (first and second moments)",
    defaults={"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
    source="torch.optim.AdamW",
    summary="Adam with decoupled weight decay",
)
def adamw(groups, lr, betas, eps):
    """Adam with weight decay applied to the weights directly, not through the gradient."""
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


@register_optimizer(
    "lbfgs",
    order=2,
    state="2m x (m curvature pairs)",
    defaults={"lr": 1.0, "history_size": 10, "max_iter": 20, "line_search_fn": "strong_wolfe"},
    source="torch.optim.LBFGS",
    summary="limited-memory BFGS; needs a closure and full or large batches",
    needs_closure=True,
)
def lbfgs(groups, lr, history_size, max_iter, line_search_fn):
    """Limited-memory BFGS with a strong-Wolfe line search."""
    return torch.optim.LBFGS(
        groups, lr=lr, history_size=history_size, max_iter=max_iter, line_search_fn=line_search_fn
    )
