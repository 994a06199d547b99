"""Newton's method with the exact Hessian: ``theta <- theta - (H + alpha I)^-1 g``.

torch.optim has no Newton method, for the reason the lectures give: the Hessian of ``n``
parameters takes ``n^2`` numbers (1e6 parameters: 4e12 bytes, 3.6 TiB) and inverting it
``O(n^3)`` time. For the small problems where it fits (the 2-D optimizer lab, tiny nets) it
shows what curvature buys: a strictly convex quadratic is minimised in one step.
"""

from __future__ import annotations

import torch

from cnnlab.optim._objective import DEFAULT_MAX_MATRIX_BYTES, FlatMethod, hyperparameters
from cnnlab.optim.line_search import backtracking


def regularised_newton_direction(
    hessian: torch.Tensor, grad: torch.Tensor, damping: float
) -> tuple[torch.Tensor, float]:
    """Solve ``(H + alpha I) d = -g`` with ``alpha >= damping`` large enough for a descent step.

    Where ``H`` has negative eigenvalues the plain Newton step climbs along them (the lectures'
    remark); ``alpha`` is raised (doubling from ``1e-3 max|H_ii|``) until ``H + alpha I`` is
    positive definite, i.e. until its Cholesky factorisation succeeds (Nocedal & Wright Alg. 3.3).

    Returns:
        The direction ``d`` and the ``alpha`` used.
    """
    eye = torch.eye(len(grad), dtype=hessian.dtype, device=hessian.device)
    alpha = damping
    floor = 1e-3 * float(hessian.diagonal().abs().max().clamp_min(1e-8))
    for _ in range(60):
        factor, info = torch.linalg.cholesky_ex(hessian + alpha * eye)
        if int(info) == 0:
            return -torch.cholesky_solve(grad.unsqueeze(1), factor).squeeze(1), alpha
        alpha = max(2 * alpha, floor)
    return -grad, float("inf")


class Newton(
    FlatMethod,
    state="n x n (Hessian)",
    source="cnnlab (exact Hessian)",
    summary="theta <- theta - (H + a I)^-1 g, backtracking line search",
):
    """Newton's method with an exact Hessian (by vmapped double backward) and a line search.

    One ``step(closure)`` is one Newton iteration: gradient and Hessian at ``theta``, the
    regularised Newton direction, then Armijo backtracking from step ``lr`` (1: the pure Newton
    step, which needs no learning rate).

    Args:
        params: parameters or parameter groups (their ``weight_decay`` joins the objective).
        lr: the first step length tried.
        damping: ``alpha`` in ``(H + alpha I)``; raised automatically where ``H`` is indefinite.
        max_memory: the largest Hessian allowed, in bytes.
        force: build the Hessian even above ``max_memory``.
    """

    method, dense = "newton", True

    def __init__(
        self,
        params,
        lr: float = 1.0,
        damping: float = 0.0,
        max_memory: float = DEFAULT_MAX_MATRIX_BYTES,
        force: bool = False,
    ):
        super().__init__(params, hyperparameters(locals()))

    def iterate(self, closure, objective, group, state):
        value, grad = objective.value_and_grad_with_graph(closure)
        hessian = objective.hessian()
        objective.release()
        direction, alpha = regularised_newton_direction(hessian, grad, group["damping"])
        theta = objective.get()

        def value_at(t: float) -> float:
            objective.set(theta + t * direction)
            return objective.value(closure)

        result = backtracking(value_at, value, float(grad @ direction), step=group["lr"])
        objective.set(theta + result.step * direction)
        state["n_iter"] = state.get("n_iter", 0) + 1
        state["damping_used"] = alpha
        return value, grad
