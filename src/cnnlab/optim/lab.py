"""The optimizer lab: race registered optimizers on a 2-D test function and keep trajectories.

Every run goes through ``create_optimizer`` and the same ``step`` / ``step(closure)`` calls a
training loop makes, so what the lab shows is what training does, one point at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cnnlab.errors import ConfigError
from cnnlab.optim.clipping import clip_gradients
from cnnlab.optim.registry import create_optimizer, list_optimizers, optimizer_entry
from cnnlab.optim.surfaces import TestFunction, get_function

#: a trajectory leaving this box around the plot is cut short: it has exploded
_ESCAPE_FACTOR = 1e3


#: the longest race: the surfaces' own take 150 to 600 steps, so 100,000 is far past any
#: lecture use, while --steps 100000000 would keep every optimizer stepping for hours and
#: hold a point per step in memory
MAX_STEPS = 100_000

#: state entries that only count (iterations, evaluations): no update rule reads them
_TALLIES = frozenset({"n_iter", "evaluations"})


def _snapshot(state: dict) -> dict:
    """A copy of an optimizer's per-parameter state, tallies left out."""
    return {
        key: value.clone() if isinstance(value, torch.Tensor) else value
        for key, value in state.items()
        if key not in _TALLIES
    }


def _same(state: dict, other: dict) -> bool:
    """Whether two snapshots hold the same values (a NaN anywhere counts as a change)."""
    return state.keys() == other.keys() and all(
        torch.equal(value, other[key]) if isinstance(value, torch.Tensor) else value == other[key]
        for key, value in state.items()
    )


@dataclass
class LabRun:
    """One optimizer's trajectory: ``points`` (steps + 1, 2) and ``values`` (steps + 1)."""

    label: str
    optimizer: str
    lr: float | None
    clip: float | None
    points: torch.Tensor
    values: torch.Tensor
    minimum_distances: torch.Tensor
    tolerance: float

    @property
    def final_value(self) -> float:
        return float(self.values[-1])

    @property
    def final_distance(self) -> float:
        return float(self.minimum_distances[-1])

    @property
    def steps_to_tolerance(self) -> int | None:
        """The first step after which the point stays within ``tolerance`` of a minimum."""
        inside = self.minimum_distances <= self.tolerance
        if not bool(inside[-1]):
            return None
        outside = torch.nonzero(~inside).flatten()
        return 0 if len(outside) == 0 else int(outside[-1]) + 1

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.final_value)

    @property
    def max_distance(self) -> float:
        """How far the run strayed from its start: large when a gradient exploded."""
        return float((self.points - self.points[0]).norm(dim=1).nan_to_num(math.inf).max())


@dataclass
class LabResult:
    """The runs of one race, with the function they ran on."""

    function: TestFunction
    start: tuple[float, float]
    steps: int
    runs: list[LabRun]


def parse_lrs(text: str | None) -> dict[str, float]:
    """``"0.01"`` (every optimizer) or ``"sgd=0.1,adam=0.05"`` into ``{name or "*": lr}``."""
    if not text:
        return {}
    lrs: dict[str, float] = {}
    for item in text.split(","):
        name, _, value = item.rpartition("=")
        try:
            lrs[name.strip().lower() or "*"] = float(value)
        except ValueError:
            raise ConfigError(
                f"bad learning rate '{item}': give a number (every optimizer) or NAME=NUMBER, "
                f"e.g. --lr sgd=0.1,adam=0.05"
            ) from None
    return lrs


def run_optimizer(
    function: TestFunction,
    optimizer: str,
    *,
    steps: int,
    start: tuple[float, float],
    lr: float | None = None,
    clip: float | None = None,
    hyperparameters: dict[str, object] | None = None,
) -> LabRun:
    """Run one optimizer from ``start`` for ``steps`` steps (iterations for closure ones).

    ``hyperparameters`` (momentum, betas, ...) go to ``create_optimizer`` beside ``lr``.
    A step is a function of the point and the optimizer's state, so once two steps in a row
    leave both exactly as they were (tallies aside) every later step would too: the rest of
    the path is that point, written without stepping (second-order methods get there in tens
    of steps; the lab page's race would otherwise spend seconds on the hundreds left).
    """
    entry = optimizer_entry(optimizer)
    if not all(map(math.isfinite, start)):
        raise ConfigError(f"the start point must be finite, got {start}")
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    settings = dict(hyperparameters or {})
    if lr is not None:
        settings["lr"] = lr
    optim = create_optimizer(entry.name, [point], **settings)

    def closure() -> torch.Tensor | None:
        point.grad = None  # zero_grad's set_to_none, without its per-call profiling overhead
        loss = None
        if entry.needs_closure:  # second-order: the loss's graph gives Hessians, and gradients
            loss = function(point)
            loss.backward()
        else:  # first-order: the gradient is all a step reads
            point.grad = torch.tensor(function.gradient(*point.tolist()), dtype=point.dtype)
        if clip is not None:
            clip_gradients([point], max_norm=clip)
        return loss

    escape = _ESCAPE_FACTOR * max(map(abs, (*function.xlim, *function.ylim)))
    points = [point.tolist()]
    previous_state: dict | None = None
    while len(points) <= steps:
        if entry.needs_closure:
            optim.step(closure)
        else:
            closure()
            optim.step()
        current = point.tolist()  # Python floats hold float64 exactly
        if current == points[-1]:
            state = _snapshot(optim.state[point])
            if previous_state is not None and _same(state, previous_state):
                points.extend([current] * (steps + 1 - len(points)))  # a fixed point
                break
            previous_state = state
        else:
            previous_state = None
        points.append(current)
        if not all(map(math.isfinite, current)) or max(map(abs, current)) > escape:
            break
    trajectory = torch.tensor(points, dtype=torch.float64)
    with torch.no_grad():
        values = function(trajectory)
    label = entry.name if clip is None else f"{entry.name} (clip {clip:g})"
    return LabRun(
        label,
        entry.name,
        lr,
        clip,
        trajectory,
        values,
        function.distance_to_minimum(trajectory),
        function.tolerance,
    )


def run_lab(
    function: str | TestFunction,
    optimizers: list[str] | None = None,
    *,
    steps: int | None = None,
    lrs: dict[str, float] | None = None,
    start: tuple[float, float] | None = None,
    clip: float | None = None,
) -> LabResult:
    """Race ``optimizers`` on ``function`` from ``start``.

    Learning rates: ``lrs`` (name or ``"*"``) over the function's tuned ones over the
    registry's defaults. With ``clip`` (or the function's own, e.g. on the cliff) every
    optimizer runs twice, without and with gradient-norm clipping, to show the difference.
    """
    function = get_function(function) if isinstance(function, str) else function
    registered = [entry.name for entry in list_optimizers()]
    valid = ", ".join(registered)
    if optimizers is not None:
        optimizers = [n for n in optimizers if n.strip()]
        if not optimizers:
            raise ConfigError(f"--optimizers names no optimizer; give some of: {valid}")
    names = [optimizer_entry(n).name for n in (optimizers or function.optimizers)]
    for key in lrs or {}:
        if key != "*" and key not in names:
            known = key in registered
            problem = "is not in this race" if known else "is not an optimizer"
            choices = ", ".join(names) if known else valid
            raise ConfigError(f"--lr {key}=...: '{key}' {problem}; name one of: {choices}")
    steps = function.steps if steps is None else steps
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if steps > MAX_STEPS:
        raise ConfigError(
            f"--steps must be at most {MAX_STEPS:,} per optimizer, got {steps:,}; the surfaces' "
            f"own races take 150 to 600"
        )
    start = function.start if start is None else tuple(start)
    clip = function.clip if clip is None else clip
    lrs = lrs or {}
    runs = []
    for name in names:
        lr = lrs.get(name, lrs.get("*", function.lr(name)))
        if lr is not None and "lr" not in optimizer_entry(name).defaults:
            lr = None
        if lr is not None and optimizer_entry(name).order == 2 and name not in lrs:
            lr = None  # second-order methods keep their line search's unit step
        runs.append(run_optimizer(function, name, steps=steps, start=start, lr=lr))
        if clip is not None:
            runs.append(run_optimizer(function, name, steps=steps, start=start, lr=lr, clip=clip))
    return LabResult(function, start, steps, runs)


def parse_start(text: str | None) -> tuple[float, float] | None:
    """``"x,y"`` into a start point."""
    if not text:
        return None
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"bad start point '{text}': give two numbers, e.g. --start=-1.2,1"
        ) from None
    return x, y
