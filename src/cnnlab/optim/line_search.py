"""Line searches along a direction ``d``: how far to step once a method knows where to go.

``backtracking`` (Armijo) needs only function values and suits Newton, whose step 1 is usually
right. ``strong_wolfe`` also bounds the slope at the accepted point, which BFGS needs to keep
its inverse-Hessian estimate positive definite (``y^T s > 0``) and nonlinear CG needs for its
directions to stay descent directions (Nocedal & Wright, Numerical Optimization, 2nd ed.,
Algorithms 3.5 and 3.6). torch's own strong-Wolfe search is private to ``torch.optim.LBFGS``,
hence this one, shared by ``newton``, ``bfgs`` and ``cg``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class LineSearchResult:
    """The accepted step length ``t``, the objective there, its gradient (Wolfe only)."""

    step: float
    value: float
    grad: torch.Tensor | None = None
    evaluations: int = 0


def backtracking(
    value_at: Callable[[float], float],
    value0: float,
    slope0: float,
    step: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evaluations: int = 40,
) -> LineSearchResult:
    """Armijo backtracking: the first ``t = step * shrink^k`` with ``f(t) <= f(0) + c1 t f'(0)``.

    Returns step 0 (stay) when no such ``t`` is found, e.g. when ``d`` is not a descent direction.
    """
    for k in range(1, max_evaluations + 1):
        value = value_at(step)
        if value <= value0 + c1 * step * slope0:
            return LineSearchResult(step, value, evaluations=k)
        step *= shrink
    return LineSearchResult(0.0, value0, evaluations=max_evaluations)


def _cubic_minimiser(t1, f1, s1, t2, f2, s2, low, high) -> float:
    """Minimiser of the cubic through two points with slopes, clamped to ``[low, high]``.

    Exact for a quadratic, so on a quadratic the search lands on the exact minimiser.
    """
    d1 = s1 + s2 - 3 * (f1 - f2) / (t1 - t2)
    square = d1 * d1 - s1 * s2
    if square >= 0 and math.isfinite(square):
        d2 = math.copysign(math.sqrt(square), t2 - t1)
        denominator = s2 - s1 + 2 * d2
        if denominator != 0:
            t = t2 - (t2 - t1) * (s2 + d2 - d1) / denominator
            if math.isfinite(t):
                return min(max(t, low), high)
    return 0.5 * (low + high)


def strong_wolfe(
    value_grad_at: Callable[[float], tuple[float, torch.Tensor]],
    direction: torch.Tensor,
    value0: float,
    slope0: float,
    step: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evaluations: int = 25,
) -> LineSearchResult:
    """A step satisfying the strong Wolfe conditions along ``direction``.

    ``f(t) <= f(0) + c1 t f'(0)`` (sufficient decrease) and ``|f'(t)| <= c2 |f'(0)|``
    (curvature). Bracketing then zoom with safeguarded cubic interpolation. A smaller ``c2``
    searches more exactly (``c2 -> 0`` is the exact line search of the CG/BFGS theory).

    Args:
        value_grad_at: ``t -> (f(x + t d), grad f(x + t d))``.
        direction: ``d``, a descent direction (``slope0 = grad f(x) . d < 0``).
        value0, slope0: ``f(x)`` and ``grad f(x) . d``.
        step: the first trial step.
    """
    evaluations = 0
    best = LineSearchResult(0.0, value0, None)

    def probe(t: float) -> tuple[float, torch.Tensor, float]:
        nonlocal evaluations
        evaluations += 1
        value, grad = value_grad_at(t)
        return value, grad, float(grad @ direction)

    def armijo(t: float, value: float) -> bool:
        return value <= value0 + c1 * t * slope0

    t_prev, f_prev, s_prev = 0.0, value0, slope0
    t = step
    low = high = None
    while evaluations < max_evaluations:
        f, g, s = probe(t)
        if not armijo(t, f) or (t_prev > 0 and f >= f_prev):
            low, high = (t_prev, f_prev, s_prev, best.grad), (t, f, s, g)
            break
        best = LineSearchResult(t, f, g)
        if abs(s) <= -c2 * slope0:
            return LineSearchResult(t, f, g, evaluations)
        if s >= 0:
            low, high = (t, f, s, g), (t_prev, f_prev, s_prev, None)
            break
        t_next = _cubic_minimiser(t_prev, f_prev, s_prev, t, f, s, t + 0.01 * (t - t_prev), 10 * t)
        t_prev, f_prev, s_prev = t, f, s
        t = t_next
    if low is None:
        return LineSearchResult(best.step, best.value, best.grad, evaluations)

    while evaluations < max_evaluations:
        (t_lo, f_lo, s_lo, g_lo), (t_hi, f_hi, s_hi, _) = low, high
        if abs(t_hi - t_lo) <= 1e-12 * max(1.0, abs(t_hi)):
            break
        left, right = min(t_lo, t_hi), max(t_lo, t_hi)
        margin = 0.1 * (right - left)
        t = _cubic_minimiser(t_lo, f_lo, s_lo, t_hi, f_hi, s_hi, left + margin, right - margin)
        f, g, s = probe(t)
        if not armijo(t, f) or f >= f_lo:
            high = (t, f, s, g)
            continue
        if abs(s) <= -c2 * slope0:
            return LineSearchResult(t, f, g, evaluations)
        if s * (t_hi - t_lo) >= 0:
            high = low
        low = (t, f, s, g)
    t_lo, f_lo, _, g_lo = low
    if t_lo == 0.0 or g_lo is None:
        return LineSearchResult(0.0, value0, None, evaluations)
    return LineSearchResult(t_lo, f_lo, g_lo, evaluations)
