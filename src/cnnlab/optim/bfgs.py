"""BFGS with the dense inverse-Hessian update the lectures write out.

torch.optim offers only the limited-memory variant (L-BFGS); the dense one keeps the whole
``n x n`` inverse-Hessian estimate, which is exactly what the lectures' update formula
describes and what the L-BFGS two-loop recursion avoids storing.
"""

from __future__ import annotations

import math

import torch

from cnnlab.optim._objective import (
    DEFAULT_MAX_MATRIX_BYTES,
    FlatMethod,
    hyperparameters,
    wolfe_search,
)


def bfgs_inverse_update(
    inverse_hessian: torch.Tensor, s: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """The lectures' update ``(I - s y^T / y^T s) H^-1 (I - y s^T / y^T s) + s s^T / y^T s``.

    Multiplied out so that it costs ``O(n^2)`` instead of two ``O(n^3)`` matrix products:
    with ``rho = 1 / y^T s`` and ``u = H^-1 y`` it is
    ``H^-1 - rho (s u^T + u s^T) + (rho^2 y^T u + rho) s s^T``.
    """
    rho = 1.0 / (y @ s)
    u = inverse_hessian @ y
    return (
        inverse_hessian
        - rho * (torch.outer(s, u) + torch.outer(u, s))
        + (rho * rho * (y @ u) + rho) * torch.outer(s, s)
    )


class BFGS(
    FlatMethod,
    state="n x n (inverse Hessian)",
    source="cnnlab (lecture update)",
    summary="H^-1 <- (I - s y'/y's) H^-1 (I - y s'/y's) + s s'/y's; needs full batches",
):
    """Broyden-Fletcher-Goldfarb-Shanno with a strong-Wolfe line search.

    One ``step(closure)`` is one iteration: ``d = -H^-1 g``, a line search along ``d``, then the
    inverse-Hessian update with ``s = theta_k - theta_{k-1}``, ``y = g_k - g_{k-1}`` (both
    gradients from the same closure, so a minibatch's iteration is self-consistent). The
    identity is scaled by ``y^T s / y^T y`` before the first update (Nocedal & Wright eq. 6.20);
    pairs with ``y^T s <= 0`` (possible only without the Wolfe conditions) are skipped.

    Args:
        params: parameters or parameter groups (their ``weight_decay`` joins the objective).
        lr: the first step length tried by the line search.
        c1, c2: the Wolfe constants (sufficient decrease, curvature).
        tolerance_grad: a step with no gradient element above this changes nothing.
        max_memory: the largest inverse-Hessian allowed, in bytes.
        force: build it even above ``max_memory``.
    """

    method, dense = "bfgs", True

    def __init__(
        self,
        params,
        lr: float = 1.0,
        c1: float = 1e-4,
        c2: float = 0.9,
        tolerance_grad: float = 1e-10,
        max_memory: float = DEFAULT_MAX_MATRIX_BYTES,
        force: bool = False,
    ):
        super().__init__(params, hyperparameters(locals()))

    def iterate(self, closure, objective, group, state):
        value, grad = objective.value_and_grad(closure)
        if not float(grad.abs().max()) > group["tolerance_grad"]:
            return value, grad  # converged: stay (as torch's L-BFGS)
        first = "inverse_hessian" not in state
        if first:
            state["inverse_hessian"] = torch.eye(
                objective.numel, dtype=grad.dtype, device=grad.device
            )
            state["n_iter"] = 0
        inverse_hessian = state["inverse_hessian"]
        direction = -(inverse_hessian @ grad)
        slope = float(grad @ direction)
        if not slope < 0:  # lost positive definiteness: restart from steepest descent
            inverse_hessian = torch.eye(objective.numel, dtype=grad.dtype, device=grad.device)
            direction, slope, first = -grad, -float(grad @ grad), True
        step = group["lr"]
        if first:
            step *= min(1.0, 1.0 / max(float(grad.abs().sum()), 1e-12))
        result = wolfe_search(objective, closure, direction, value, slope, step, group)
        if result.step > 0:
            s = result.step * direction
            y = result.grad - grad
            ys = float(y @ s)
            yy = float(y @ y)
            if (
                ys > 1e-10 * (yy * float(s @ s)) ** 0.5
                and math.isfinite(yy / ys)
                and math.isfinite(1 / ys)
            ):
                if first:
                    inverse_hessian = inverse_hessian * (ys / yy)
                inverse_hessian = bfgs_inverse_update(inverse_hessian, s, y)
        else:  # no acceptable step along this direction: forget the curvature estimate
            inverse_hessian = torch.eye(objective.numel, dtype=grad.dtype, device=grad.device)
        state["inverse_hessian"] = inverse_hessian
        state["n_iter"] += 1
        return value, grad
