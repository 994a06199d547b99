"""Loss landscapes along filter-normalised random directions (Li et al. 2018).

The loss is evaluated at ``θ + α·δ + β·η`` for two random Gaussian directions δ, η. Each
direction is *filter-normalised* (Li et al. 2018, Sec. 4): for every filter i of every layer j
(a conv output channel, or a row of a linear layer), ``d_ij ← d_ij / ||d_ij|| · ||θ_ij||``, so a
step of 1 moves every filter by its own size and networks of different weight scales (which
ReLU and batch norm make equivalent) can be compared. As in the authors' code
(``ignore='biasbn'``), biases and batch-norm parameters get a zero direction (every parameter
with at most one dimension), and the model is evaluated in eval mode, so batch norm uses its
running statistics unchanged.

The same fixed batches are scored at every grid point with ``torch.func.functional_call``
(weights swapped per call, no model rebuilt). Two numbers summarise what the contour shows: the
fraction of grid points where the surface curves down in some direction (finite-difference
Hessian of the loss with a negative eigenvalue, the 2-D analogue of the paper's
|λmin/λmax| map) and the mean |discrete Laplacian| of log-loss (how rugged the surface is).
Both are taken where the loss is at most ``LOSS_CAP`` = 10, the region the paper's contour plots
show: far from the trained weights the loss of a deep network climbs to 1e6 and more, and those
walls would otherwise drown the shape of the basin, which is what tells a ResNet from a plain
net.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.func import functional_call

from cnnlab.errors import CnnlabError
from cnnlab.validate import SEED, check

Batches = list[tuple[torch.Tensor, torch.Tensor]]
LOSS_CAP = 10.0  # Li et al.'s contour plots stop at a loss of 10
# Li et al. draw 51×51 grids at most; 501 (a quarter of a million evaluations) is far past any
# lecture figure yet still finishes, where --grid 100000 would run for years.
MAX_GRID = 501
# A direction is as long as the weights filter by filter: 1 is Li et al.'s span, and at 100
# the weights are swamped by noise a hundred times their size (every loss past the cap).
MAX_SPAN = 100.0


def check_grid(grid: int) -> None:
    """Refuse a landscape grid under 3 points per axis (`landscape` and `lab` alike)."""
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 3:
        raise CnnlabError(f"--grid must be at least 3 points per axis, got {grid}")
    if grid > MAX_GRID:
        raise CnnlabError(
            f"--grid must be at most {MAX_GRID} points per axis (it costs grid² loss "
            f"evaluations), got {grid}; 21 to 51 shows the landscape"
        )


def check_span(span: float) -> None:
    """Refuse a span that is not a finite positive number of direction lengths, or one so wide
    that every point but the centre is far past the loss cap."""
    if (
        isinstance(span, bool)
        or not isinstance(span, int | float)
        or not math.isfinite(span)
        or not 0 < span <= MAX_SPAN
    ):
        raise CnnlabError(
            f"--span must be a finite number in (0, {MAX_SPAN:g}] (the grid's half-width, in "
            f"filter-normalised direction lengths; 1 is Li et al.'s), got {span}"
        )


def filter_normalized_direction(
    model: nn.Module, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """A random Gaussian direction in weight space, filter-normalised as in Li et al. 2018.

    Parameters with at most one dimension (biases, batch-norm scale and shift) get zeros.
    """
    direction = {}
    for name, weight in model.named_parameters():
        if weight.dim() <= 1:
            direction[name] = torch.zeros_like(weight)
            continue
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
        noise = noise.to(weight.device)
        filter_norms = weight.detach().flatten(1).norm(dim=1)
        noise_norms = noise.flatten(1).norm(dim=1).clamp_min(1e-12)
        scale = (filter_norms / noise_norms).view(-1, *[1] * (weight.dim() - 1))
        direction[name] = noise * scale
    return direction


def _evaluator(
    model: nn.Module, batches: Batches, loss_fn: Callable
) -> Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], float, float], float]:
    """``loss(δ, η, α, β)`` at ``θ + αδ + βη``, the mean over the fixed batches."""
    model.eval()
    weights = {n: p.detach() for n, p in model.named_parameters()}
    images = sum(len(labels) for _, labels in batches)

    @torch.no_grad()
    def loss_at(first, second, alpha, beta) -> float:
        moved = {
            name: weight + alpha * first[name] + beta * second[name]
            for name, weight in weights.items()
            if first[name].any() or second[name].any()
        }
        total = torch.zeros((), dtype=torch.float64, device=next(iter(weights.values())).device)
        for inputs, labels in batches:
            outputs = functional_call(model, moved, (inputs,))
            total += loss_fn(outputs, labels) * len(labels)
        return float(total / images)

    return loss_at


@dataclass
class Landscape:
    """A 1-D slice and a 2-D grid of losses around the trained weights.

    Attributes:
        alphas, betas: grid coordinates (multiples of the filter-normalised directions).
        losses: ``[len(betas), len(alphas)]``, ``losses[i, j]`` at ``(alphas[j], betas[i])``.
        line_alphas, line_losses: the 1-D interpolation ``L(θ + α·δ)``.
        directions: the two filter-normalised directions ``(δ, η)``, by parameter name.
        label: what was measured (model and data), for titles.
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    line_alphas: np.ndarray
    line_losses: np.ndarray
    directions: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]
    label: str = ""

    @property
    def nonconvex_fraction(self) -> float:
        return nonconvex_fraction(self.losses, self.alphas[1] - self.alphas[0], cap=LOSS_CAP)

    @property
    def roughness(self) -> float:
        return roughness(self.losses, self.alphas[1] - self.alphas[0], cap=LOSS_CAP)

    def describe(self) -> str:
        centre = self.losses[len(self.betas) // 2, len(self.alphas) // 2]
        return (
            f"loss at the trained weights {centre:.4f}, range {self.losses.min():.4f} to "
            f"{self.losses.max():.4f}; non-convex grid points {100 * self.nonconvex_fraction:.1f}%"
            f"; roughness (mean |Laplacian| of log loss) {self.roughness:.3f}"
        )


def _hessians(surface: np.ndarray, step: float) -> np.ndarray:
    """Central-difference 2×2 Hessians at the interior grid points, ``[G-2, G-2, 2, 2]``."""
    z = surface
    zxx = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / step**2
    zyy = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / step**2
    zxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * step**2)
    return np.stack([np.stack([zxx, zxy], -1), np.stack([zxy, zyy], -1)], -2)


def _basin(surface: np.ndarray, cap: float | None) -> np.ndarray:
    """Interior grid points whose finite-difference stencil (3×3) stays at or below ``cap``."""
    z = np.asarray(surface, dtype=np.float64)
    rows, cols = z.shape[0] - 2, z.shape[1] - 2
    if cap is None:
        return np.ones((rows, cols), dtype=bool)
    below = z <= cap
    inside = np.ones((rows, cols), dtype=bool)
    for di in range(3):
        for dj in range(3):
            inside &= below[di : di + rows, dj : dj + cols]
    return inside


def nonconvex_fraction(
    surface: np.ndarray, step: float, tolerance: float = 1e-3, cap: float | None = None
) -> float:
    """Share of interior points whose Hessian has an eigenvalue below ``-tolerance × max|λ|``.

    With ``cap``, only points whose loss is at most ``cap`` count, and ``max|λ|`` is theirs.
    """
    inside = _basin(surface, cap)
    if not inside.any():
        return 0.0
    hessians = _hessians(np.asarray(surface, dtype=np.float64), step)[inside]
    eigenvalues = np.linalg.eigvalsh(hessians)
    scale = max(float(np.abs(eigenvalues).max()), 1e-30)
    return float((eigenvalues.min(axis=-1) < -tolerance * scale).mean())


def roughness(surface: np.ndarray, step: float, cap: float | None = None) -> float:
    """Mean |discrete Laplacian| of log loss, per unit step squared: 0 for a plane.

    With ``cap``, the mean runs over the points whose loss is at most ``cap``.
    """
    inside = _basin(surface, cap)
    if not inside.any():
        return 0.0
    hessians = _hessians(np.log(np.maximum(np.asarray(surface, dtype=np.float64), 1e-12)), step)
    return float(np.abs(hessians[..., 0, 0] + hessians[..., 1, 1])[inside].mean())


def loss_landscape(
    model: nn.Module,
    batches: Batches,
    *,
    grid: int = 21,
    span: float = 1.0,
    seed: int = 0,
    loss_fn: Callable = F.cross_entropy,
    progress: bool = False,
    label: str = "",
    on_point: Callable[[int, int], None] | None = None,
    directions: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None,
) -> Landscape:
    """The loss on a ``grid × grid`` square of side ``2·span`` and on a 1-D line through it.

    Args:
        model: the trained network (evaluated in eval mode; its weights are not changed).
        batches: the fixed ``(inputs, targets)`` batches scored at every point.
        grid: points per axis (at least 3).
        span: the grid covers ``[-span, span]`` in both directions.
        seed: draws the two directions.
        loss_fn: ``loss_fn(outputs, targets)`` averaged over a batch.
        progress: show a rich progress bar.
        on_point: called with ``(done, total)`` after each evaluation (a page's progress bar).
        directions: the plane's two directions by parameter name (e.g. the PCA directions of
            a training trajectory, as Li et al. Sec. 7 plot it) instead of random ones.
    """
    check_grid(grid)
    check_span(span)
    check("loss_landscape", "seed", seed, SEED)
    if directions is None:
        generator = torch.Generator().manual_seed(seed)
        directions = (
            filter_normalized_direction(model, generator),
            filter_normalized_direction(model, generator),
        )
    first, second = directions
    zero = {name: torch.zeros_like(d) for name, d in first.items()}
    loss_at = _evaluator(model, batches, loss_fn)
    alphas = np.linspace(-span, span, grid)
    line_alphas = np.linspace(-span, span, 2 * grid + 1)
    points = [(a, b) for b in alphas for a in alphas]
    losses, line = [], []
    total = len(points) + len(line_alphas)
    with _progress(progress, total) as advance:
        for alpha in line_alphas:
            line.append(loss_at(first, zero, float(alpha), 0.0))
            advance()
            if on_point is not None:
                on_point(len(line), total)
        for alpha, beta in points:
            losses.append(loss_at(first, second, float(alpha), float(beta)))
            advance()
            if on_point is not None:
                on_point(len(line) + len(losses), total)
    return Landscape(
        alphas=alphas,
        betas=alphas.copy(),
        losses=np.array(losses).reshape(grid, grid),
        line_alphas=line_alphas,
        line_losses=np.array(line),
        directions=(first, second),
        label=label,
    )


class _progress:
    """A rich progress bar over the evaluations, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = Progress(
            "loss landscape", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self.bar.start()
        task = self.bar.add_task("", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()


def landscape_figure(landscape: Landscape) -> Figure:
    """1-D interpolation, 2-D contour and 3-D surface, with the convexity numbers."""
    figure = Figure(figsize=(18.0, 5.6))
    line_axes = figure.add_subplot(1, 3, 1)
    line_axes.plot(landscape.line_alphas, landscape.line_losses, color="tab:blue", lw=2)
    line_axes.axvline(0.0, color="grey", ls=":", lw=1, label="trained weights (α = 0)")
    line_axes.set_yscale("log")
    line_axes.set_xlabel("α (steps along δ, filter-normalised)")
    line_axes.set_ylabel("loss (log scale)")
    line_axes.set_title("1-D: L(θ + α·δ)")
    line_axes.legend(loc="upper center")
    line_axes.grid(alpha=0.3)

    contour_axes = figure.add_subplot(1, 3, 2)
    alphas, betas = np.meshgrid(landscape.alphas, landscape.betas)
    clipped = np.minimum(landscape.losses, LOSS_CAP)
    levels = np.linspace(clipped.min(), max(clipped.max(), clipped.min() + 1e-6), 25)
    filled = contour_axes.contourf(alphas, betas, clipped, levels=levels, cmap="viridis")
    contour_axes.contour(alphas, betas, clipped, levels=levels, colors="white", linewidths=0.4)
    contour_axes.plot([0], [0], "r*", markersize=12, label="trained weights")
    contour_axes.set_aspect("equal")
    contour_axes.set_xlabel("α (along δ)")
    contour_axes.set_ylabel("β (along η)")
    contour_axes.set_title(f"2-D: L(θ + α·δ + β·η), clipped at {LOSS_CAP:g}")
    contour_axes.legend(loc="upper right", fontsize=8)
    figure.colorbar(filled, ax=contour_axes, fraction=0.046, pad=0.04, label="loss")

    surface_axes = figure.add_subplot(1, 3, 3, projection="3d")
    surface_axes.plot_surface(alphas, betas, clipped, cmap="viridis", linewidth=0)
    surface_axes.set_xlabel("α")
    surface_axes.set_ylabel("β")
    surface_axes.set_zlabel(f"loss (clipped at {LOSS_CAP:g})")
    surface_axes.set_title("surface")
    figure.suptitle(
        f"Loss landscape {landscape.label}, filter-normalised directions (Li et al. 2018)\n"
        f"non-convex points {100 * landscape.nonconvex_fraction:.1f}%, roughness "
        f"{landscape.roughness:.3f} (mean |∇²| of log loss; higher = more chaotic), "
        f"both where the loss is at most {LOSS_CAP:g}",
        fontsize=11,
    )
    figure.tight_layout()
    return figure


def save_landscape(
    source: str | Path,
    data: str | None = None,
    *,
    grid: int = 21,
    span: float = 1.0,
    batches: int = 4,
    batch_size: int = 64,
    seed: int = 0,
    data_dir: str | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
    progress: bool = True,
) -> tuple[Path, Landscape]:
    """``cnnlab landscape``: a checkpoint's loss landscape on ``batches`` training batches."""
    from cnnlab.outputs import FIGURE_SUFFIXES, check_output
    from cnnlab.viz.inputs import default_output, fixed_batches, load_model, save_figure

    check_grid(grid)  # before the model and the data are loaded
    check_span(span)
    check("landscape", "seed", seed, SEED)
    out = check_output(out or default_output(source, "landscape"), FIGURE_SUFFIXES, "a picture")
    loaded = load_model(source, device=device)
    data = data or loaded.data  # the run's own dataset and data directory, as evaluate takes
    if not data:
        raise CnnlabError("name the data to score the loss on with --data (e.g. cifar10)")
    scored, data_name = fixed_batches(
        data,
        batches,
        batch_size,
        loaded.input_size,
        data_dir=data_dir or loaded.data_dir,
        device=device,
        seed=seed,
    )
    images = sum(len(labels) for _, labels in scored)
    label = f"of {loaded.label} on {images} {data_name} training images"
    result = loss_landscape(
        loaded.model, scored, grid=grid, span=span, seed=seed, progress=progress, label=label
    )
    figure = landscape_figure(result)
    return save_figure(figure, out, inputs=[source]), result
