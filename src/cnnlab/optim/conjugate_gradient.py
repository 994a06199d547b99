"""Nonlinear conjugate gradient (Fletcher-Reeves, Polak-Ribiere+), with restarts.

torch.optim has no nonlinear CG. It needs only two parameter-sized vectors beyond the
gradient (the previous direction and gradient), yet on a quadratic with exact line searches it
reaches the minimum in at most ``n`` steps, as its directions are conjugate with respect to
the Hessian (the lectures' ``d_k^T H d_{k-1} = 0``).
"""

from __future__ import annotations

import torch

from cnnlab.errors import ConfigError
from cnnlab.optim._objective import FlatMethod, hyperparameters, wolfe_search

BETAS = ("fr", "pr+")


def conjugate_beta(rule: str, grad: torch.Tensor, previous_grad: torch.Tensor) -> float:
    """``beta_k`` of ``d_k = -g_k + beta_k d_{k-1}``.

    Fletcher-Reeves ``g_k.g_k / g_{k-1}.g_{k-1}``; Polak-Ribiere+
    ``max(0, g_k.(g_k - g_{k-1}) / g_{k-1}.g_{k-1})``, whose clamp at 0 restarts along the
    steepest descent whenever the directions stop making progress.
    """
    denominator = float(previous_grad @ previous_grad)
    if rule == "fr":
        return float(grad @ grad) / denominator
    return max(0.0, float(grad @ (grad - previous_grad)) / denominator)


class ConjugateGradient(
    FlatMethod,
    state="2x (direction, gradient)",
    source="cnnlab (FR / PR+)",
    summary="d <- -g + beta d; strong-Wolfe line search; restarts",
):
    """Nonlinear CG; one ``step(closure)`` is one direction and one strong-Wolfe line search.

    Restarts with the steepest descent every ``restart_every`` iterations (default: the number
    of parameters) and whenever the new direction is not a descent direction.

    Args:
        params: parameters or parameter groups (their ``weight_decay`` joins the objective).
        lr: the first step length of the first line search; later ones start from the
            previous step, scaled by the change in slope (Nocedal & Wright eq. 3.60) and by
            the change in ``lr``, so that a schedule or a new rate takes effect.
        beta: ``"fr"`` (Fletcher-Reeves) or ``"pr+"`` (Polak-Ribiere+).
        c1, c2: Wolfe constants; ``c2 = 0.1`` keeps CG's directions descent directions.
        restart_every: iterations between restarts (0: number of parameters).
        tolerance_grad: a step with no gradient element above this changes nothing.
    """

    method = "cg"

    def __init__(
        self,
        params,
        lr: float = 1.0,
        beta: str = "pr+",
        c1: float = 1e-4,
        c2: float = 0.1,
        restart_every: int = 0,
        tolerance_grad: float = 1e-10,
    ):
        if beta not in BETAS:
            raise ConfigError(f"cg beta must be one of {', '.join(BETAS)}, got '{beta}'")
        super().__init__(params, hyperparameters(locals()))

    def iterate(self, closure, objective, group, state):
        value, grad = objective.value_and_grad(closure)
        if not float(grad.abs().max()) > group["tolerance_grad"]:
            return value, grad  # converged: stay (as torch's L-BFGS)
        restart_every = group["restart_every"] or objective.numel
        since_restart = state.get("since_restart", 0)
        direction = -grad
        restarted = True
        if "direction" in state and since_restart < restart_every:
            beta = conjugate_beta(group["beta"], grad, state["grad"])
            candidate = -grad + beta * state["direction"]
            if float(grad @ candidate) < 0:
                direction, restarted = candidate, beta == 0.0
        slope = float(grad @ direction)
        if "step" in state:
            step = group["lr"] * state["step"] / state["lr"] * state["slope"] / slope
        else:
            step = group["lr"] * min(1.0, 1.0 / max(float(grad.abs().sum()), 1e-12))
        result = wolfe_search(objective, closure, direction, value, slope, step, group)
        if result.step > 0:
            state.update(
                direction=direction, grad=grad, step=result.step, slope=slope, lr=group["lr"]
            )
            state["since_restart"] = 1 if restarted else since_restart + 1
        else:  # the line search found nothing: restart along the steepest descent next time
            for key in ("direction", "grad", "step", "slope", "lr"):
                state.pop(key, None)
            state["since_restart"] = 0
        state["n_iter"] = state.get("n_iter", 0) + 1
        return value, grad
