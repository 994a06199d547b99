"""Every picture keeps its words inside the frame, and chart labels do not sit on each other.

Each figure is drawn with the Agg renderer and every visible text artist's window extent (what
matplotlib measures for the drawn glyphs) is compared with the figure's own box: a colour-bar
label or a title pushed past the edge is cut off in the PNG, since figures are saved at their
own size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from synthetic_runs import write_metrics

from cnnlab.viz.compare import ModelPoint, compare_figure
from cnnlab.viz.curves import curves_figure
from cnnlab.viz.features import convolve_figure, feature_maps_figure
from cnnlab.viz.filters import filter_grid, grid_figure
from cnnlab.viz.gradflow import GradientFlow, gradflow_figure
from cnnlab.viz.landscape import Landscape, landscape_figure
from cnnlab.viz.lr_find import LrFindResult, lr_find_figure
from cnnlab.viz.saliency import SaliencyMaps, saliency_figure


def _texts(figure: Figure) -> list[tuple[str, object]]:
    """The texts the renderer really drew (not, say, tick labels beyond the axis limits), each
    with its window extent."""
    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    drawn: list[Text] = []
    draw_text = renderer.draw_text

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn.append(mtext)
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = record
    canvas.draw()
    return [(text.get_text(), text.get_window_extent(renderer)) for text in drawn]


def texts_outside(figure: Figure) -> list[str]:
    frame = figure.bbox
    return [
        f"{label!r} at x {box.x0:.0f}..{box.x1:.0f}, y {box.y0:.0f}..{box.y1:.0f} "
        f"(figure {frame.width:.0f} x {frame.height:.0f})"
        for label, box in _texts(figure)
        if box.x0 < frame.x0 - 1
        or box.y0 < frame.y0 - 1
        or box.x1 > frame.x1 + 1
        or box.y1 > frame.y1 + 1
    ]


def _saliency(relu: bool) -> Figure:
    maps = SaliencyMaps(
        target=3,
        probability=0.42,
        gradient=torch.rand(32, 32),
        guided=torch.randn(1, 32, 32) if relu else None,
        deconvnet=torch.randn(1, 32, 32) if relu else None,
        occlusion=torch.randn(32, 32),
    )
    return saliency_figure(torch.rand(1, 32, 32), maps, "3")


def _landscape() -> Figure:
    axis = np.linspace(-1, 1, 11)
    losses = 0.5 + np.add.outer(axis**2, 2 * axis**2)
    return landscape_figure(
        Landscape(axis, axis, losses, axis, 0.5 + axis**2, ({}, {}), label="resnet20 on digits")
    )


def _lr_find() -> Figure:
    lrs = np.logspace(-6, 1, 80)
    smoothed = 2.3 - 2.0 / (1 + np.exp(-(np.log10(lrs) + 3))) + np.maximum(0, lrs - 1)
    return lr_find_figure(
        LrFindResult(lrs, smoothed, smoothed, 1e-3, float(lrs[70]), True),
        "learning-rate range test: lenet5_modern on digits, momentum",
    )


def _curves(tmp_path) -> Figure:
    from synthetic_runs import history

    runs = []
    for name, kind in (("resnet20-baseline-run", "step_lr"), ("plain20-baseline-run", "stalled")):
        write_metrics(tmp_path / name, history(kind))
        runs.append(tmp_path / name)
    return curves_figure(runs)


# The README's chart: 17 ImageNet models, crowded around 4-6 GMACs and 76-79% (the names,
# MACs, parameters and top-1 of torchvision's IMAGENET1K_V1 weights).
IMAGENET_POINTS = [
    ("alexnet", 56.52, 714e6, 61.1e6),
    ("vgg11", 69.02, 7.61e9, 132.9e6),
    ("vgg16", 71.59, 15.47e9, 138.4e6),
    ("vgg19", 72.38, 19.63e9, 143.7e6),
    ("googlenet", 69.78, 1.50e9, 6.6e6),
    ("inception_v3", 77.29, 5.71e9, 27.2e6),
    ("resnet18", 69.76, 1.81e9, 11.7e6),
    ("resnet34", 73.31, 3.66e9, 21.8e6),
    ("resnet50", 76.13, 4.09e9, 25.6e6),
    ("resnet101", 77.37, 7.80e9, 44.5e6),
    ("resnet152", 78.31, 11.51e9, 60.2e6),
    ("densenet121", 74.43, 2.83e9, 8.0e6),
    ("densenet201", 76.90, 4.29e9, 20.0e6),
    ("squeezenet1_1", 58.18, 349e6, 1.2e6),
    ("wide_resnet50_2", 78.47, 11.40e9, 68.9e6),
    ("resnext50_32x4d", 77.62, 4.23e9, 25.0e6),
    ("resnext101_32x8d", 79.31, 16.41e9, 88.8e6),
]


def _compare() -> Figure:
    points = [
        ModelPoint(name, name, top1, None, int(macs), int(params), (3, 224, 224), "test", "val")
        for name, top1, macs, params in IMAGENET_POINTS
    ]
    return compare_figure(points)


def _optim_lab(tmp_path) -> Figure:
    """The race picture, caught as ``plot_lab`` saves it (it draws and writes in one go)."""
    from cnnlab.optim.lab import run_lab
    from cnnlab.viz.optim_lab import plot_lab

    saved: list[Figure] = []
    savefig = Figure.savefig

    def keep(self, *args, **kwargs):
        saved.append(self)
        return savefig(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", keep)
        plot_lab(run_lab("rosenbrock", None, steps=30), tmp_path / "lab.png")
    return saved[-1]


PICTURES = {
    "filters, 1 channel": lambda _: grid_figure(filter_grid(torch.randn(6, 1, 5, 5), "c1")),
    "filters, 1 channel, square": lambda _: grid_figure(
        filter_grid(torch.randn(64, 1, 7, 7), "features.conv1")
    ),
    "filters, RGB": lambda _: grid_figure(filter_grid(torch.randn(64, 3, 11, 11), "conv1")),
    "filters, per channel": lambda _: grid_figure(
        filter_grid(torch.randn(16, 6, 5, 5), "features.c3")
    ),
    "convolve sobel": lambda _: convolve_figure(torch.rand(1, 28, 28), "sobel-v"),
    "convolve blob": lambda _: convolve_figure(torch.rand(1, 28, 28), "blob"),
    "feature maps": lambda _: feature_maps_figure(
        torch.rand(1, 32, 32), {"features.c1": torch.rand(6, 28, 28), "c5": torch.rand(16, 5, 5)}
    ),
    "saliency": lambda _: _saliency(relu=True),
    "saliency without ReLU": lambda _: _saliency(relu=False),
    "gradient flow": lambda _: gradflow_figure(
        [
            GradientFlow(
                "plain56 (initial weights)",
                [f"l{i}" for i in range(56)],
                list(np.logspace(-4, 0, 56)),
                2.3,
            ),
            GradientFlow(
                "resnet56 (initial weights)",
                [f"l{i}" for i in range(56)],
                list(np.logspace(-1, 0, 56)),
                2.3,
            ),
        ]
    ),  # fmt: skip
    "landscape": lambda _: _landscape(),
    "lr-find": lambda _: _lr_find(),
    "curves": _curves,
    "compare": lambda _: _compare(),
    "optim-lab": _optim_lab,
}


@pytest.mark.parametrize("name", PICTURES)
def test_no_text_falls_outside_the_picture(name, tmp_path):
    assert texts_outside(PICTURES[name](tmp_path)) == []


def test_compare_labels_neither_overlap_nor_hide_behind_bubbles():
    figure = _compare()
    names = {name for name, *_ in IMAGENET_POINTS}
    labels = [(text, box) for text, box in _texts(figure) if text in names]
    assert sorted(text for text, _ in labels) == sorted(names)
    for index, (first, box) in enumerate(labels):
        for second, other in labels[index + 1 :]:
            assert not box.overlaps(other), f"{first} overlaps {second}"


def test_convolve_kernel_numbers_contrast_with_their_cells():
    from matplotlib import colormaps

    figure = convolve_figure(torch.rand(1, 28, 28), "blob")
    kernel_axes = figure.axes[1]
    limit = max(abs(float(text.get_text())) for text in kernel_axes.texts)
    for text in kernel_axes.texts:
        cell = colormaps["RdBu_r"](0.5 + 0.5 * float(text.get_text()) / limit)
        cell_luminance = 0.2126 * cell[0] + 0.7152 * cell[1] + 0.0722 * cell[2]
        ink = 1.0 if text.get_color() == "white" else 0.0
        assert abs(ink - cell_luminance) >= 0.45, (text.get_text(), text.get_color())
