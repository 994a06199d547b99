"""Rich tables for ``cnnlab optimizers`` and ``cnnlab optim-lab``."""

from __future__ import annotations

from rich.table import Table

from cnnlab.optim.lab import LabResult
from cnnlab.optim.registry import list_optimizers


def _format_default(value) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 2**20:
        return f"{value / 2**30:g} GiB"
    if isinstance(value, tuple | list):
        return "(" + ",".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def optimizers_table() -> Table:
    """Every registered optimizer: order, state memory per parameter, defaults, source."""
    table = Table(title="optimizers: create_optimizer(name, model, **hyperparameters)")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("order", no_wrap=True)
    table.add_column("state per parameter", ratio=2)
    table.add_column("defaults", overflow="fold", ratio=3)
    table.add_column("source", overflow="fold", ratio=2)
    for entry in list_optimizers():
        defaults = " ".join(f"{k}={_format_default(v)}" for k, v in entry.defaults.items())
        order = f"{entry.order}, closure" if entry.needs_closure else str(entry.order)
        table.add_row(entry.name, order, entry.state, defaults, entry.source)
    table.caption = (
        "order 2: uses curvature. closure: step(closure) re-evaluates the loss on the same "
        "batch, so use full or large batches. n = number of parameters."
    )
    return table


def lab_table(result: LabResult) -> Table:
    """One row per run: final value, distance to the nearest minimum, steps to tolerance."""
    function = result.function
    table = Table(
        title=f"{function.name} from ({result.start[0]:g}, {result.start[1]:g}), "
        f"{result.steps} steps"
    )
    table.add_column("optimizer", style="bold cyan", no_wrap=True)
    table.add_column("lr", justify="right")
    table.add_column("final f", justify="right")
    table.add_column("distance to minimum", justify="right")
    table.add_column(f"steps to {function.tolerance:g}", justify="right")
    table.add_column("farthest from start", justify="right")
    for run in result.runs:
        reached = run.steps_to_tolerance
        table.add_row(
            run.label,
            "default" if run.lr is None else f"{run.lr:g}",
            f"{run.final_value:.4g}",
            f"{run.final_distance:.3g}",
            "-" if reached is None else str(reached),
            f"{run.max_distance:.3g}",
        )
    table.caption = f"minimum f = {function.minimum_value:g}; {function.lesson}"
    return table
