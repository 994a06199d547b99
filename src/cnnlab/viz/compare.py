"""Accuracy against cost, after Canziani, Paszke & Culurciello (2016), "An analysis of deep
neural network models for practical applications", Fig. 2: top-1 accuracy against operations
per image, one bubble per network, its area proportional to the number of parameters.

Cost comes from ``cnnlab.sizing.summary`` (MACs of one image at the model's input size, and
the parameters that take part in inference: auxiliary classifiers, unused in eval mode, are
left out, as Canziani et al. and torchvision count them). Accuracy comes from, in order of
precedence: a CSV the user gives (``model,top1[,top5]``), run directories (the best test top-1
of ``metrics.csv`` and the top-5 of that epoch), or torchvision's ImageNet-1K figures. Those
are read from torchvision's own weight metadata (``weights.meta["_metrics"]["ImageNet-1K"]``,
the numbers in its documentation table) for the original ``IMAGENET1K_V1`` weights, and are
attached to a cnnlab model only when the architectures agree: the same name and the same
number of parameters.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError

TORCHVISION_WEIGHTS = "IMAGENET1K_V1"


@dataclass
class ModelPoint:
    """One bubble of the chart.

    Attributes:
        name: the label (model name, or the run's directory for runs).
        model: the registered model it is.
        top1: top-1 accuracy in percent; ``top5`` likewise, or None.
        macs: multiply-accumulates for one image at ``input_size``.
        params: parameters used at inference.
        source: where the accuracy comes from.
        dataset: what the accuracy was measured on.
    """

    name: str
    model: str
    top1: float
    top5: float | None
    macs: int
    params: int
    input_size: tuple[int, ...]
    source: str
    dataset: str


@dataclass
class Accuracy:
    top1: float
    top5: float | None
    source: str
    dataset: str


def torchvision_accuracy(model: str) -> Accuracy | None:
    """torchvision's ImageNet-1K top-1/top-5 for ``model``'s ``IMAGENET1K_V1`` weights, if any."""
    import torchvision
    from torchvision.models import get_model_weights, list_models

    if model not in list_models():
        return None
    weights = get_model_weights(model)
    if TORCHVISION_WEIGHTS not in weights.__members__:
        return None
    meta = weights[TORCHVISION_WEIGHTS].meta
    metrics = meta.get("_metrics", {}).get("ImageNet-1K")
    if not metrics:
        return None
    source = (
        f"torchvision {torchvision.__version__.split('+')[0]} {weights.__name__}."
        f"{TORCHVISION_WEIGHTS}"
    )
    return Accuracy(metrics["acc@1"], metrics["acc@5"], source, "ImageNet-1K val")


def torchvision_num_params(model: str) -> int | None:
    """The parameter count torchvision states for the weights ``torchvision_accuracy`` uses."""
    from torchvision.models import get_model_weights

    return get_model_weights(model)[TORCHVISION_WEIGHTS].meta.get("num_params")


def read_results_csv(path: str | Path) -> dict[str, Accuracy]:
    """A user's results file: a header ``model,top1[,top5]`` and one row per model (percent).

    Raises:
        CnnlabError: the file is missing, lacks the columns, or holds a non-number.
    """
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"no results file at {path}; give a CSV with columns model,top1[,top5]")
    try:
        return _read_results(path)
    except (UnicodeDecodeError, csv.Error) as error:  # a picture, a spreadsheet, NUL bytes
        raise CnnlabError(
            f"{path} is not a text CSV ({type(error).__name__}: {str(error)[:80]}); give a "
            "UTF-8 CSV with columns model,top1[,top5]"
        ) from None


def _read_results(path: Path) -> dict[str, Accuracy]:
    """The rows of an existing results file (see ``read_results_csv``)."""
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "model" not in columns or "top1" not in columns:
            raise CnnlabError(
                f"{path} must have a header with columns model,top1[,top5]; it has "
                f"{','.join(columns) or 'no header'}"
            )
        results = {}
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                top1 = float(row["top1"])
                top5 = float(row["top5"]) if row.get("top5") else None
            except ValueError:
                raise CnnlabError(
                    f"{path} line {line}: top1/top5 must be accuracies in percent, got "
                    f"'{row.get('top1')}', '{row.get('top5', '')}'"
                ) from None
            for name, value in (("top1", top1), ("top5", top5)):
                if value is not None and not (math.isfinite(value) and 0 <= value <= 100):
                    raise CnnlabError(
                        f"{path} line {line}: {name} must be an accuracy in percent, from 0 to "
                        f"100, got '{row[name]}'"
                    )
            results[row["model"]] = Accuracy(top1, top5, f"{path.name}", "user results")
    return results


@dataclass
class RunAccuracy:
    """The best epoch of a run, and what it was: model, its arguments, data, input size."""

    label: str
    model: str
    model_kwargs: dict
    input_size: tuple[int, ...] | None
    accuracy: Accuracy


def run_accuracy(run_dir: str | Path) -> RunAccuracy:
    """The best test top-1 of a run (and that epoch's top-5), with what the model was."""
    from cnnlab.checkpoint import load_checkpoint
    from cnnlab.viz.curves import read_run

    history = read_run(run_dir)
    if not history.has("test_top1"):
        raise CnnlabError(f"{history.path} has no test_top1 column; is it a cnnlab run?")
    best = max(history.rows, key=lambda row: row["test_top1"])
    run_path = history.path.parent
    checkpoint = next(
        (run_path / n for n in ("best.pt", "checkpoint.pt") if (run_path / n).is_file()), run_path
    )
    state = load_checkpoint(checkpoint)
    config = state.get("config") or {}
    size = config.get("input_size")
    accuracy = Accuracy(
        best["test_top1"],
        best.get("test_top5"),
        f"run {history.label}, epoch {int(best['epoch'])}",
        f"{config.get('data', 'its data')} test",
    )
    return RunAccuracy(
        history.label,
        state["model_name"],
        dict(state["model_kwargs"]),
        tuple(size) if size else None,
        accuracy,
    )


def _cost(model: str, model_kwargs: dict, input_size) -> tuple[int, int, int, tuple[int, ...]]:
    """MACs of one image, inference and total parameters, and the input size (meta device)."""
    import torch

    from cnnlab.models import create_model
    from cnnlab.sizing import GeometryWarning, summary

    with torch.device("meta"):
        network = create_model(model, **model_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)
        sized = summary(network, input_size=input_size)
    inference = sized.total_params - sized.unshown_params
    return sized.macs, inference, sized.total_params, tuple(sized.input_size)


def compare_points(
    models: list[str],
    *,
    results: str | Path | None = None,
    runs: list[str | Path] | None = None,
) -> list[ModelPoint]:
    """The chart's points: registered ``models`` and ``runs``, with cost and accuracy.

    Raises:
        CnnlabError: a model has no accuracy from any source (the message says how to give one).
    """
    from cnnlab.errors import unknown_name
    from cnnlab.models import list_models

    given = read_results_csv(results) if results else {}
    points = []
    known = list_models()
    missing = []
    for model in models:
        if model not in known:
            raise unknown_name("model", model, known, "run `cnnlab models`")
        macs, params, total_params, size = _cost(model, {}, None)
        accuracy = given.get(model)
        if accuracy is None:
            accuracy = torchvision_accuracy(model)
            # torchvision counts auxiliary classifiers when its weights include them
            if accuracy is not None and torchvision_num_params(model) not in (params, total_params):
                accuracy = None  # same name, different architecture
        if accuracy is None:
            missing.append(model)
            continue
        points.append(
            ModelPoint(
                model,
                model,
                accuracy.top1,
                accuracy.top5,
                macs,
                params,
                size,
                accuracy.source,
                accuracy.dataset,
            )
        )
    if missing:
        raise CnnlabError(
            f"no accuracy for {', '.join(missing)}: torchvision publishes no ImageNet figure for "
            f"{'this architecture' if len(missing) == 1 else 'these'}; give one with --results "
            "FILE.csv "
            "(columns model,top1[,top5]) or a trained run with --runs RUN_DIR"
        )
    for run in runs or []:
        found = run_accuracy(run)
        macs, params, _, size = _cost(found.model, found.model_kwargs, found.input_size)
        points.append(
            ModelPoint(
                found.label,
                found.model,
                found.accuracy.top1,
                found.accuracy.top5,
                macs,
                params,
                size,
                found.accuracy.source,
                found.accuracy.dataset,
            )
        )
    if not points:
        raise CnnlabError("nothing to compare; name models or pass --runs RUN_DIR")
    return points


def compare_figure(points: list[ModelPoint], title: str | None = None) -> Figure:
    """Top-1 accuracy against MACs (log axis), bubble area proportional to parameters."""
    figure = Figure(figsize=(11.0, 6.5), dpi=100, layout="constrained")
    axis = figure.add_subplot()
    largest = max(point.params for point in points)
    scale = 2500.0 / largest  # the largest bubble gets 2500 pt² (about 56 pt across)
    datasets = list(dict.fromkeys(point.dataset for point in points))
    for index, dataset in enumerate(datasets):
        group = [point for point in points if point.dataset == dataset]
        axis.scatter(
            [point.macs for point in group],
            [point.top1 for point in group],
            s=[max(point.params * scale, 12.0) for point in group],
            color=f"C{index}",
            alpha=0.45,
            edgecolors="black",
            linewidths=0.6,
            label=dataset,
        )
    axis.set_xscale("log")
    macs = [point.macs for point in points]
    axis.set_xlim(min(macs) / 2, max(macs) * 4)  # room for the labels
    tops = [point.top1 for point in points]
    margin = max(2.0, 0.1 * (max(tops) - min(tops)))
    axis.set_ylim(min(tops) - margin, max(tops) + margin)
    axis.set(
        xlabel="MACs per image (multiply-accumulates, log scale)",
        ylabel="top-1 accuracy (%)",
        title=title or "top-1 accuracy vs cost (bubble area = parameters)",
    )
    axis.grid(alpha=0.3)
    legend = figure.legend(
        title="accuracy measured on", fontsize=8, title_fontsize=8, loc="outside right lower"
    )
    for handle in legend.legend_handles:
        handle.set_sizes([40.0])
    _size_key(figure, axis, largest, scale)
    sources = sorted({point.source for point in points if point.source.startswith("torchvision")})
    if sources:
        version = sources[0].split(" ")[1]
        axis.text(
            0.99,
            0.01,
            f"ImageNet figures: torchvision {version}, IMAGENET1K_V1 weights' "
            "meta['_metrics']['ImageNet-1K']",
            transform=axis.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.35",
        )
    _label_bubbles(figure, axis, points, scale)  # last: the legends change the axes' size
    return figure


def _label_bubbles(figure: Figure, axis, points: list[ModelPoint], scale: float) -> None:
    """Name each bubble where its label covers no other label and no bubble.

    Candidate places ring the bubble, nearest first (right, left, above, below, diagonals, then
    further out with a leader line); each is measured with the renderer after the layout is
    done, so what is checked is what is drawn. The labels stay out of the layout, so placing
    them does not move the axes. Big bubbles are labelled first: they have the fewest free
    places around them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = (
        figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    )
    canvas.draw()
    renderer = canvas.get_renderer()
    frame = axis.get_window_extent(renderer)
    pixels_per_point = figure.dpi / 72
    disks = [
        (
            *axis.transData.transform((point.macs, point.top1)),
            math.sqrt(max(point.params * scale, 12.0)) / 2 * pixels_per_point,
        )
        for point in points
    ]
    placed: list = []  # the boxes of the labels drawn so far
    leaders: list = []  # points along their leader lines
    order = sorted(range(len(points)), key=lambda i: -points[i].params)
    for index in order:
        point, radius = points[index], disks[index][2] / pixels_per_point
        best = None
        for gap in (2.0, 8.0, 18.0, 30.0):
            for dx, dy, ha, va in _AROUND:
                offset = (dx * (radius + gap), dy * (radius + gap))
                label = axis.annotate(
                    point.name,
                    (point.macs, point.top1),
                    xytext=offset,
                    textcoords="offset points",
                    ha=ha,
                    va=va,
                    fontsize=8,
                    annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": "0.3", "lw": 0.7} if gap > 8 else None,
                )
                label.set_in_layout(False)
                box = label.get_window_extent(renderer).padded(3)  # no two labels touch
                line = _leader(disks[index], box) if gap > 8 else []
                clashes = _CLASH_LABEL * sum(box.overlaps(other) for other in placed)
                clashes += _CLASH_LABEL * sum(box.contains(*xy) for xy in leaders)
                clashes += _CLASH_LABEL * sum(
                    other.contains(*xy) for other in placed for xy in line
                )
                clashes += sum(_covers(box, disk) for disk in disks)
                if not line:  # without a leader line the nearest bubble must be its own
                    own = _distance(box, disks[index])
                    clashes += _CLASH_LABEL * any(
                        _distance(box, disk) < own for i, disk in enumerate(disks) if i != index
                    )
                inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
                clashes += 0 if inside else _CLASH_LABEL
                if best is None or clashes < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (clashes, label, box, line)
                else:
                    label.remove()
                if clashes == 0:
                    break
            if best[0] == 0:
                break
        placed.append(best[2])
        leaders.extend(best[3])


# A label over another label (or its leader line), or outside the axes, is unreadable; one over
# a translucent bubble is only harder to read.
_CLASH_LABEL = 10


def _leader(disk: tuple[float, float, float], box) -> list[tuple[float, float]]:
    """Points along a leader line from a bubble's edge to its label's centre (pixels)."""
    x, y, radius = disk
    dx, dy = (box.x0 + box.x1) / 2 - x, (box.y0 + box.y1) / 2 - y
    length = math.hypot(dx, dy) or 1.0
    start = min(radius / length, 1.0)
    steps = [start + (1.0 - start) * i / 11 for i in range(12)]
    return [(x + t * dx, y + t * dy) for t in steps]


# Directions around a bubble, nearest reading order first: (dx, dy, ha, va).
_AROUND = (
    (1, 0, "left", "center"),
    (-1, 0, "right", "center"),
    (0, 1, "center", "bottom"),
    (0, -1, "center", "top"),
    (0.7, 0.7, "left", "bottom"),
    (0.7, -0.7, "left", "top"),
    (-0.7, 0.7, "right", "bottom"),
    (-0.7, -0.7, "right", "top"),
)


def _distance(box, disk: tuple[float, float, float]) -> float:
    """From a text's box to a bubble's edge (centre x, y and radius in pixels); < 0 inside."""
    x, y, radius = disk
    nearest_x = min(max(x, box.x0), box.x1)
    nearest_y = min(max(y, box.y0), box.y1)
    return math.hypot(nearest_x - x, nearest_y - y) - radius


def _covers(box, disk: tuple[float, float, float]) -> bool:
    """Whether a text's box reaches well into a bubble."""
    return _distance(box, disk) < -0.1 * disk[2]


def _size_key(figure: Figure, axis, largest: int, scale: float) -> None:
    """A second legend: bubbles of round parameter counts."""
    exponent = math.floor(math.log10(largest))
    sizes = [10**exponent, 10 ** (exponent - 1)]
    if largest >= 3 * 10**exponent:
        sizes.insert(0, 5 * 10**exponent)
    handles = [
        axis.scatter(
            [],
            [],
            s=max(size * scale, 12.0),
            color="0.8",
            edgecolors="black",
            linewidths=0.6,
            label=_count(size),
        )
        for size in sizes
    ]
    figure.legend(
        handles=handles,
        title="parameters",
        loc="outside right upper",
        fontsize=8,
        title_fontsize=8,
        labelspacing=2.4,
        borderpad=1.6,
        handletextpad=1.6,
    )


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def points_table(points: list[ModelPoint]):
    """The points as a rich table: top-1/top-5, GMACs, parameters, input size, source."""
    from rich.table import Table

    from cnnlab.geometry.units import dims, si

    table = Table()
    for column in ("model", "top-1 %", "top-5 %", "MACs", "params", "input"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_column("accuracy from")
    for p in points:
        table.add_row(
            p.name,
            f"{p.top1:.2f}",
            "" if p.top5 is None else f"{p.top5:.2f}",
            si(p.macs),
            si(p.params),
            dims(p.input_size),
            f"{p.source} ({p.dataset})",
        )
    return table
