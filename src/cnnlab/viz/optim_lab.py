"""Pictures of the optimizer lab: trajectories over a contour plot, the loss per step, a GIF.

One colour per optimizer (its clipped variant dashed in the same colour), the minima starred,
log-spaced contours where the function spans decades, so the race reads at a glance.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from cnnlab.optim.lab import LabResult, LabRun  # noqa: E402
from cnnlab.optim.surfaces import TestFunction  # noqa: E402
from cnnlab.outputs import check_output  # noqa: E402
from cnnlab.viz.inputs import save_figure  # noqa: E402

FIGSIZE = (14.0, 6.0)
DPI = 100
_GIF_FRAMES = 40


def _colours(runs: list[LabRun]) -> dict[str, tuple]:
    names = list(dict.fromkeys(run.optimizer for run in runs))
    palette = plt.get_cmap("tab10")
    return {name: palette(i % 10) for i, name in enumerate(names)}


def _draw_contours(ax, function: TestFunction, resolution: int = 300) -> None:
    xs = np.linspace(*function.xlim, resolution)
    ys = np.linspace(*function.ylim, resolution)
    grid = torch.tensor(np.stack(np.meshgrid(xs, ys), axis=-1), dtype=torch.float64)
    with torch.no_grad():
        values = function(grid).numpy()
    height = values - min(function.minimum_value, values.min())
    if function.log_contours:
        low = max(height[height > 0].min(), 1e-3)
        levels = np.logspace(np.log10(low), np.log10(height.max()), 25)
        ax.contourf(
            xs,
            ys,
            height + low,
            levels=levels,
            cmap="Greys_r",
            alpha=0.55,
            norm=matplotlib.colors.LogNorm(),
        )
        ax.contour(xs, ys, height + low, levels=levels, colors="grey", linewidths=0.5, alpha=0.6)
    else:
        levels = np.linspace(0, height.max(), 25)
        ax.contourf(xs, ys, height, levels=levels, cmap="Greys_r", alpha=0.55)
        ax.contour(xs, ys, height, levels=levels, colors="grey", linewidths=0.5, alpha=0.6)
    minima = np.array(function.minima)
    ax.plot(
        minima[:, 0],
        minima[:, 1],
        "*",
        color="gold",
        markersize=18,
        markeredgecolor="black",
        label="minimum",
        zorder=5,
    )
    ax.set_xlim(*function.xlim)
    ax.set_ylim(*function.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _run_label(run: LabRun, function: TestFunction) -> str:
    label = run.label if run.lr is None else f"{run.label}, lr {run.lr:g}"
    inside = (
        (run.points[:, 0] >= function.xlim[0])
        & (run.points[:, 0] <= function.xlim[1])
        & (run.points[:, 1] >= function.ylim[0])
        & (run.points[:, 1] <= function.ylim[1])
    )
    if not bool(inside.all()):
        label += " (left the plot)"
    return label


def _style(run: LabRun, colours: dict) -> dict:
    return {"color": colours[run.optimizer], "linestyle": "--" if run.clip else "-"}


def plot_lab(result: LabResult, path: str | Path) -> Path:
    """Write the race as a PNG: trajectories over contours (left), ``f - f*`` per step (right)."""
    function = result.function
    colours = _colours(result.runs)
    fig, (ax_map, ax_loss) = plt.subplots(
        1, 2, figsize=FIGSIZE, dpi=DPI, gridspec_kw={"width_ratios": [1.25, 1]}
    )
    _draw_contours(ax_map, function)
    for run in result.runs:
        points = run.points.numpy()
        ax_map.plot(
            points[:, 0],
            points[:, 1],
            marker="o",
            markersize=2.5,
            linewidth=1.6,
            label=_run_label(run, function),
            zorder=4,
            **_style(run, colours),
        )
    ax_map.plot(*result.start, "o", color="black", markersize=8, label="start", zorder=6)
    ax_map.set_title(
        f"{function.name}: {result.steps} steps from ({result.start[0]:g}, {result.start[1]:g})"
    )
    ax_map.legend(loc="best", fontsize=8, framealpha=0.85)

    floor = 1e-16
    for run in result.runs:
        gap = (run.values - function.minimum_value).clamp_min(floor).numpy()
        ax_loss.semilogy(
            np.arange(len(gap)), gap, linewidth=1.6, label=run.label, **_style(run, colours)
        )
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("f(x, y) - f(minimum)")
    ax_loss.set_title("distance to the minimum value (log scale)")
    ax_loss.grid(True, which="major", alpha=0.3)
    fig.suptitle(function.lesson, fontsize=12)
    fig.tight_layout()
    path = save_figure(fig, path, DPI)
    plt.close(fig)
    return path


def animate_lab(result: LabResult, path: str | Path, fps: int = 12) -> Path:
    """Write the race as an animated GIF (matplotlib PillowWriter): the paths grow step by step."""
    function = result.function
    colours = _colours(result.runs)
    fig, ax = plt.subplots(figsize=(7.5, 6.0), dpi=DPI)
    _draw_contours(ax, function, resolution=150)
    lines = [
        ax.plot(
            [],
            [],
            marker="o",
            markersize=2.5,
            linewidth=1.6,
            label=_run_label(run, function),
            **_style(run, colours),
        )[0]
        for run in result.runs
    ]
    ax.plot(*result.start, "o", color="black", markersize=8, label="start")
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    longest = max(len(run.points) for run in result.runs)
    frames = sorted({int(round(i)) for i in np.linspace(1, longest, min(_GIF_FRAMES, longest))})

    def draw(frame: int):
        for line, run in zip(lines, result.runs, strict=True):
            points = run.points[:frame].numpy()
            line.set_data(points[:, 0], points[:, 1])
        ax.set_title(f"{function.name}: step {frame - 1}")
        return lines

    path = check_output(path, (".gif",), "the animation")
    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, draw, frames=frames, blit=False).save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
