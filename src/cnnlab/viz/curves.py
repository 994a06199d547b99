"""Training curves of one or several runs, drawn as the ResNet paper's CIFAR figures.

He et al. (2016, Fig. 1 and 6) overlay plain and residual networks in one picture: training
error dashed, test error solid, one colour per network, against training time. ``cnnlab plot``
does the same from the ``metrics.csv`` of any number of run directories, with the loss in a
second panel. A step of the learning rate (a milestone or plateau schedule) explains a sudden
drop in the curves, so each step is marked with a vertical line; a schedule that changes the
rate every epoch (cosine, exponential) would draw a line on every epoch, so such runs are not
marked. This module is the one drawing of training curves: the ``curves.png`` a run writes
after every epoch comes from here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import CnnlabError
from cnnlab.run_metrics import read_metrics

if TYPE_CHECKING:  # matplotlib is imported when drawing, so `cnnlab --help` stays fast
    from matplotlib.figure import Figure

METRICS = ("both", "error", "loss")
FIGURE_HEIGHT = 4.5  # inches; at DPI this gives 450-pixel-high pictures
PANEL_WIDTH = 6.5
DPI = 100
# A run whose learning rate changes at more than this fraction of epoch boundaries follows a
# continuous schedule: its changes are not marked.
_MAX_STEP_FRACTION = 0.25
_MARKED_EPOCHS = 30  # short runs get a marker on each epoch, so single points show


@dataclass
class RunHistory:
    """The per-epoch metrics of one run.

    Attributes:
        label: how the run is named in legends (its directory name).
        path: the ``metrics.csv`` read.
        rows: one dict per epoch, floats keyed by the CSV columns.
        schedule: the learning-rate schedule named in the run's ``config.yaml``, if any.
    """

    label: str
    path: Path
    rows: list[dict[str, float]]
    schedule: str | None = None

    def column(self, key: str) -> list[float]:
        """One column as a list; non-finite values become NaN (a gap in the plot)."""
        return [_finite_or_nan(row.get(key, math.nan)) for row in self.rows]

    def has(self, key: str) -> bool:
        return bool(self.rows) and all(key in row for row in self.rows)

    @property
    def epochs(self) -> list[float]:
        return [row["epoch"] for row in self.rows]


def _finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def metrics_path(run: str | Path) -> Path:
    """The ``metrics.csv`` of a run directory (a path to the CSV itself is taken as is)."""
    path = Path(run)
    return path / "metrics.csv" if path.is_dir() else path


def read_run(run: str | Path, label: str | None = None) -> RunHistory:
    """Read a run's ``metrics.csv``.

    Raises:
        CnnlabError: there is no ``metrics.csv`` or it has no rows or lacks the loss columns.
    """
    path = metrics_path(run)
    if not path.is_file():
        raise CnnlabError(
            f"no metrics.csv in {run}; pass a run directory written by `cnnlab train`"
        )
    not_run = (
        f"{path} is not a run directory or its metrics.csv; pass a run directory written by "
        "`cnnlab train`"
    )
    if path.suffix.lower() != ".csv":
        raise CnnlabError(not_run)
    try:
        rows = read_metrics(path)
        with open(path, newline="") as file:
            header = file.readline().strip().split(",")
    except (ValueError, KeyError, UnicodeDecodeError):
        raise CnnlabError(not_run) from None
    if header != [""] and "epoch" not in header:  # an empty file: a run not yet one epoch in
        raise CnnlabError(not_run)
    if not rows:
        raise CnnlabError(f"{path} has no epochs yet; wait for the first epoch to finish")
    missing = [k for k in ("epoch", "train_loss", "test_loss") if k not in rows[0]]
    if missing:
        raise CnnlabError(f"{path} lacks the column(s) {', '.join(missing)}; is it a cnnlab run?")
    return RunHistory(label or path.parent.name or str(path), path, rows, _schedule(path.parent))


def _schedule(run_dir: Path) -> str | None:
    import yaml

    config = run_dir / "config.yaml"
    if not config.is_file():
        return None
    try:
        settings = yaml.safe_load(config.read_text())
    except yaml.YAMLError:
        return None
    return settings.get("schedule") if isinstance(settings, dict) else None


def lr_steps(history: RunHistory) -> list[tuple[float, float, float]]:
    """Where a step schedule changed the learning rate: ``(epoch, old lr, new lr)``.

    ``cnnlab train`` logs the rate in force at the end of each epoch, which per-iteration
    schedules (step, multistep, ...) have already moved for the next epoch: a change between
    rows ``i-1`` and ``i`` takes effect after epoch ``i``. The plateau schedule steps after
    the row is logged, so its row holds the rate the epoch used and the change takes effect
    after epoch ``i-1``. Runs whose rate changes at most boundaries (continuous schedules)
    return no steps.
    """
    if not history.has("lr") or len(history.rows) < 2:
        return []
    lrs, epochs = history.column("lr"), history.epochs
    lag = 1 if history.schedule == "plateau" else 0
    steps = [
        (epochs[i - lag], lrs[i - 1], lrs[i])
        for i in range(1, len(lrs))
        if not math.isclose(lrs[i - 1], lrs[i], rel_tol=1e-6, abs_tol=0.0)
    ]
    if len(steps) > max(1, _MAX_STEP_FRACTION * (len(lrs) - 1)):
        return []
    return steps


def curves_figure(
    runs: list[RunHistory | str | Path],
    metric: str = "both",
    title: str | None = None,
    references: Sequence[tuple[str, float]] = (),
) -> Figure:
    """Draw top-1 error (%) and/or loss against epochs, training dashed and test solid.

    Args:
        runs: run directories, ``metrics.csv`` paths or already read histories.
        metric: ``"both"`` (error and loss side by side), ``"error"`` or ``"loss"``.
        title: the figure's title (default: the runs' names).
        references: ``(label, error %)`` pairs drawn as horizontal lines on the error panel:
            a paper's final test error to compare a reproduction with.

    Returns:
        The figure; each run's lines are labelled ``"<run> train"`` / ``"<run> test"``.
    """
    from matplotlib.figure import Figure

    if metric not in METRICS:
        raise CnnlabError(f"unknown metric '{metric}'; choose one of {', '.join(METRICS)}")
    if not runs:
        raise CnnlabError("no runs to plot; pass at least one run directory")
    histories = [run if isinstance(run, RunHistory) else read_run(run) for run in runs]
    panels = ["error", "loss"] if metric == "both" else [metric]
    figure = Figure(figsize=(PANEL_WIDTH * len(panels), FIGURE_HEIGHT), dpi=DPI)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    palette = [f"C{i}" for i in range(10)]
    for panel, axis in zip(panels, axes, strict=True):
        for index, history in enumerate(histories):
            colour = palette[index % len(palette)]
            if panel == "error":
                _draw_error(axis, history, colour)
            else:
                _draw_loss(axis, history, colour)
            _mark_lr_steps(axis, history, colour, annotate=index == 0 or len(histories) == 1)
        if panel == "error":
            for label, error in references:
                axis.axhline(
                    error,
                    color="black",
                    linestyle="-.",
                    linewidth=1.0,
                    label=f"{label}: {error:g}%",
                )
        _finish_axis(axis, panel)
    names = ", ".join(h.label for h in histories)
    figure.suptitle(title or f"training curves: {names}", fontsize=11)
    figure.tight_layout()
    return figure


def _draw_error(axis, history: RunHistory, colour: str) -> None:
    epochs = history.epochs
    for key, style, suffix in (
        ("train_top1", "--", "train"),
        ("test_top1", "-", "test"),
        ("ema_test_top1", ":", "test (EMA)"),
    ):
        if history.has(key):
            error = [100.0 - value for value in history.column(key)]
            axis.plot(
                epochs,
                error,
                style,
                color=colour,
                label=f"{history.label} {suffix}",
                **_markers(history),
            )


def _draw_loss(axis, history: RunHistory, colour: str) -> None:
    epochs = history.epochs
    for key, style, suffix in (("train_loss", "--", "train"), ("test_loss", "-", "test")):
        axis.plot(
            epochs,
            history.column(key),
            style,
            color=colour,
            label=f"{history.label} {suffix}",
            **_markers(history),
        )


def _markers(history: RunHistory) -> dict:
    return {"marker": "o", "markersize": 3} if len(history.rows) <= _MARKED_EPOCHS else {}


def _mark_lr_steps(axis, history: RunHistory, colour: str, annotate: bool) -> None:
    for epoch, old, new in lr_steps(history):
        axis.axvline(epoch, color=colour, linestyle=":", linewidth=1.0, alpha=0.7)
        if annotate:
            axis.annotate(
                f"lr {old:.3g}→{new:.3g}",
                xy=(epoch, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -4),
                textcoords="offset points",
                rotation=90,  # vertical along its line: close steps never overlap
                va="top",
                fontsize=8,
                color=colour,
            )


def _finish_axis(axis, panel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    if panel == "error":
        axis.set(xlabel="epoch", ylabel="top-1 error (%)", title="top-1 error")
    else:
        axis.set(xlabel="epoch", ylabel="loss (per example)", title="loss")
        values = [v for line in axis.get_lines() for v in line.get_ydata() if v == v and v > 0]
        if values and max(values) / min(values) > 100:  # a blow-up would flatten the rest
            axis.set_yscale("log")
            axis.set_ylabel("loss (per example, log scale)")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, title="dashed: train, solid: test", title_fontsize=8)


def plot_runs(
    runs: list[str | Path],
    out: str | Path,
    metric: str = "both",
    references: Sequence[tuple[str, float]] = (),
) -> Path:
    """Draw the curves of ``runs`` into the picture ``out``; the same as ``cnnlab plot``."""
    from cnnlab.viz.inputs import save_figure

    figure = curves_figure(runs, metric, references=references)
    return save_figure(figure, out, figure.dpi, inputs=[Path(run) / "metrics.csv" for run in runs])


def redraw_run_curves(run_dir: Path, row: dict[str, float]) -> None:
    """Redraw a run's ``curves.png`` after an epoch: the training engine's epoch-end hook."""
    plot_runs([run_dir], run_dir / "curves.png")
