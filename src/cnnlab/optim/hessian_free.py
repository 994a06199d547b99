"""Hessian-free optimisation (Martens, ICML 2010): Newton steps without ever forming a matrix.

Each step solves ``(H + lambda I) d = -g`` approximately by conjugate gradient, which needs
only products ``H v``; those come from double backward (Pearlmutter's trick) at the cost of
about two gradient evaluations, and memory stays a few parameter-sized vectors. torch.optim
has nothing like it. From the paper: truncated CG with its relative-progress stopping rule,
CG warm-started from the previous step's solution times a decay, iterates saved at
geometrically spaced iterations and backtracked over, and Levenberg-Marquardt damping driven by
the reduction ratio ``rho`` (actual over predicted decrease). Beyond the paper, an Armijo
backtracking on the chosen step (Martens & Sutskever 2012) guarantees the loss never rises.
The curvature is the paper's Gauss-Newton matrix ``J^T H_L J`` (positive semi-definite) when
the closure's loss is one convex loss of the network output, which is found by watching the
closure's torch calls; otherwise the Hessian, for which CG stops at the first direction of
negative curvature.
"""

from __future__ import annotations

import math

import torch

from cnnlab.errors import ConfigError
from cnnlab.optim._objective import FlatMethod, hyperparameters
from cnnlab.optim.line_search import backtracking

CURVATURES = ("gauss_newton", "hessian")


def truncated_cg(
    matvec, rhs: torch.Tensor, start: torch.Tensor, max_iter: int, tolerance: float = 5e-4
) -> list[tuple[int, torch.Tensor, float]]:
    """Martens' CG for ``A x = b``: the iterates to backtrack over, with their model values.

    Minimises ``q(x) = x.Ax/2 - b.x`` from ``start``; stops after ``max_iter`` iterations, at
    negative curvature, when ``q`` improved by less than ``tolerance`` (relative) over the last
    ``max(10, i/10)`` iterations, or when the residual reaches rounding level. Saves iterates
    at ``ceil(1.3^j)`` and the last one.

    Returns:
        ``(iteration, x_i, x_i.A x_i)`` for the saved iterates, in order.
    """
    x = start.clone()
    residual = rhs - matvec(x)
    direction = residual.clone()
    rr = float(residual @ residual)
    values = [-0.5 * float(x @ (rhs + residual))]  # q(x) = -(b.x + r.x)/2
    saved: list[tuple[int, torch.Tensor, float]] = []

    def save(i: int) -> None:
        saved.append((i, x.clone(), float(x @ rhs) - float(x @ residual)))  # x.Ax = x.(b - r)

    next_save = 1.0
    solved = (64 * torch.finfo(rhs.dtype).eps) ** 2 * float(rhs @ rhs)
    for i in range(1, max_iter + 1):
        if rr <= solved:  # residual at rounding level: the system is solved
            break
        product = matvec(direction)
        curvature = float(direction @ product)
        if not curvature > 0:
            break
        alpha = rr / curvature
        x.add_(direction, alpha=alpha)
        residual.add_(product, alpha=-alpha)
        new_rr = float(residual @ residual)
        direction.mul_(new_rr / rr).add_(residual)
        rr = new_rr
        values.append(-0.5 * float(x @ (rhs + residual)))
        if i >= math.ceil(next_save):
            save(i)
            while math.ceil(next_save) <= i:
                next_save *= 1.3
        window = max(10, i // 10)
        if i > window and values[-1] < 0:
            progress = (values[-1] - values[-1 - window]) / values[-1]
            if progress < window * tolerance:
                break
    if not saved or saved[-1][0] != len(values) - 1:
        save(len(values) - 1)
    return saved


class HessianFree(
    FlatMethod,
    state="1x (CG solution)",
    source="cnnlab (Martens 2010)",
    summary="truncated CG on (G + lambda I) d = -g (Gauss-Newton G), LM damping, warm start",
):
    """Martens' Hessian-free method; one ``step(closure)`` is one damped, truncated Newton step.

    The state between steps is the previous CG solution (one parameter-sized vector) and the
    damping ``lambda``; a step's transient memory is the CG vectors and the saved iterates
    (logarithmically many), never an ``n x n`` matrix.

    Args:
        params: parameters or parameter groups (their ``weight_decay`` joins the objective).
        lr: the step length tried first on the chosen CG iterate (1: the Newton step).
        damping: the initial Levenberg-Marquardt ``lambda`` of ``(H + lambda I)``.
        cg_max_iter: CG iterations per step at most.
        cg_decay: the previous solution times this starts the next CG (the paper's 0.95).
        curvature: ``"gauss_newton"`` (the paper's ``G = J^T H_L J``, positive semi-definite,
            used when the closure's loss is one convex loss such as cross-entropy or MSE of the
            network output; otherwise the Hessian) or ``"hessian"``.
    """

    method = "hessian_free"

    def __init__(
        self,
        params,
        lr: float = 1.0,
        damping: float = 0.1,
        cg_max_iter: int = 50,
        cg_decay: float = 0.95,
        curvature: str = "gauss_newton",
    ):
        if curvature not in CURVATURES:
            raise ConfigError(
                f"hessian_free curvature must be one of {', '.join(CURVATURES)}, got '{curvature}'"
            )
        super().__init__(params, hyperparameters(locals()))

    def iterate(self, closure, objective, group, state):
        damping = state.get("damping", group["damping"])
        value, grad = objective.value_and_grad_with_graph(
            closure, gauss_newton=group["curvature"] == "gauss_newton"
        )
        previous = state.get("direction")
        start = torch.zeros_like(grad) if previous is None else group["cg_decay"] * previous

        def damped_product(vector: torch.Tensor) -> torch.Tensor:
            return objective.hvp(vector) + damping * vector

        iterates = truncated_cg(damped_product, -grad, start, group["cg_max_iter"])
        evaluations = 1 + iterates[-1][0] + 1  # the gradient and the curvature-vector products
        objective.release()
        theta = objective.get()

        def value_at(delta: torch.Tensor, t: float = 1.0) -> float:
            nonlocal evaluations
            evaluations += 1
            objective.set(theta + t * delta)
            return objective.value(closure)

        # backtrack from the last iterate while an earlier one does better
        index = len(iterates) - 1
        best_value = value_at(iterates[index][1], group["lr"])
        while index > 0:
            earlier = value_at(iterates[index - 1][1], group["lr"])
            if earlier >= best_value:
                break
            index, best_value = index - 1, earlier
        _, solution, damped_curvature = iterates[index]
        delta = group["lr"] * solution
        # reduction ratio: actual decrease over the undamped quadratic model's g.d + d.Hd/2
        curvature = damped_curvature - damping * float(solution @ solution)
        predicted = float(grad @ delta) + 0.5 * group["lr"] ** 2 * curvature
        rho = (best_value - value) / predicted if predicted < 0 else -math.inf
        if rho < 0.25:
            damping *= 1.5
        elif rho > 0.75:
            damping *= 2.0 / 3.0
        step = 1.0
        if not best_value <= value + 1e-4 * float(grad @ delta):
            result = backtracking(lambda t: value_at(delta, t), value, float(grad @ delta), 0.8)
            step, best_value = result.step, result.value
        objective.set(theta + step * delta)
        state["direction"] = delta
        state["damping"] = damping
        state["n_iter"] = state.get("n_iter", 0) + 1
        state["evaluations"] = state.get("evaluations", 0) + evaluations
        return value, grad
