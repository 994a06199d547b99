"""Feature maps: what chosen layers of a network output for one image, and classic fixed filters.

The learned maps are read with forward hooks, so any ``nn.Module`` can be inspected without
changing its code. The fixed filters are the lecture's convolution examples (lecture 4,
"Convolution Example: Sobel Filter" and "Blob Detection"): the vertical and horizontal Sobel
kernels and a 9×9 centre-surround kernel, a negated, integer-rounded Laplacian of Gaussian. As
in the lecture (and in every CNN layer) "convolution" is cross-correlation, with no padding: an
N×N image and an F×F kernel give an (N - F + 1)×(N - F + 1) response.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.models.features import feature_extractor
from cnnlab.viz.inputs import (
    Normalisation,
    default_output,
    image_input,
    load_model,
    read_image,
    save_figure,
)

SOBEL_VERTICAL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
SOBEL_HORIZONTAL = SOBEL_VERTICAL.t().contiguous()
BLOB = torch.tensor(
    [
        [0, 0, 3, 2, 2, 2, 3, 0, 0],
        [0, 2, 3, 5, 5, 5, 3, 2, 0],
        [3, 3, 5, 3, 0, 3, 5, 3, 3],
        [2, 5, 3, -12, -23, -12, 3, 5, 2],
        [2, 5, 0, -23, -40, -23, 0, 5, 2],
        [2, 5, 3, -12, -23, -12, 3, 5, 2],
        [3, 3, 5, 3, 0, 3, 5, 3, 3],
        [0, 2, 3, 5, 5, 5, 3, 2, 0],
        [0, 0, 3, 2, 2, 2, 3, 0, 0],
    ],
    dtype=torch.float32,
)

CLASSIC_FILTERS = {
    "sobel-v": (SOBEL_VERTICAL, "Sobel, vertical edges", True),
    "sobel-h": (SOBEL_HORIZONTAL, "Sobel, horizontal edges", True),
    "blob": (BLOB, "blob detector (negated Laplacian of Gaussian)", False),
}
"""name -> (kernel, title, shown as absolute value like the lecture)."""


def classic_filter(name: str) -> torch.Tensor:
    """The lecture's kernel called ``name`` (``sobel-v``, ``sobel-h``, ``blob``)."""
    if name not in CLASSIC_FILTERS:
        raise unknown_name("filter", name, CLASSIC_FILTERS, f"use {', '.join(CLASSIC_FILTERS)}")
    return CLASSIC_FILTERS[name][0].clone()


def convolve(image: torch.Tensor, name: str) -> torch.Tensor:
    """Cross-correlate a grey image ``[H, W]`` (or ``[1, H, W]``) with a classic filter.

    Returns:
        The signed response, ``[H - F + 1, W - F + 1]`` (no padding, stride 1).
    """
    kernel = classic_filter(name)
    plane = image.reshape(image.shape[-2], image.shape[-1]).float()
    size = kernel.shape[-1]
    if min(plane.shape) < size:
        raise CnnlabError(
            f"the image is {plane.shape[0]}×{plane.shape[1]} but the {name} kernel is "
            f"{size}×{size}; use an image at least {size} pixels on each side"
        )
    return F.conv2d(plane[None, None], kernel[None, None])[0, 0]


def convolve_figure(image: torch.Tensor, name: str) -> Figure:
    """Image * kernel = response, drawn side by side as the lecture does."""
    response = convolve(image, name)
    kernel, title, absolute = CLASSIC_FILTERS[name]
    figure = Figure(figsize=(14.0, 4.8), layout="constrained")
    image_axes, kernel_axes, response_axes = figure.subplots(
        1, 3, gridspec_kw={"width_ratios": [1.0, 0.6, 1.0]}
    )
    plane = image.reshape(image.shape[-2], image.shape[-1])
    shown = image_axes.imshow(plane.numpy(), cmap="gray", vmin=0, vmax=1)
    figure.colorbar(shown, ax=image_axes, fraction=0.046, pad=0.04, label="intensity (0-1)")
    image_axes.set_title(f"input image, {plane.shape[0]}×{plane.shape[1]} px")
    _pixel_axes(image_axes)

    from matplotlib import colormaps

    limit = float(kernel.abs().max())
    kernel_axes.imshow(kernel.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    size = kernel.shape[0]
    for (row, column), value in zip(
        [(r, c) for r in range(size) for c in range(size)], kernel.flatten().tolist(), strict=True
    ):
        kernel_axes.text(
            column,
            row,
            f"{value:g}",
            ha="center",
            va="center",
            fontsize=9 if size <= 3 else 6,
            color=_ink_on(colormaps["RdBu_r"](0.5 + 0.5 * value / limit)),
        )
    kernel_axes.set_title(f"kernel: {title}\n{size}×{size}, red > 0 > blue")
    _pixel_axes(kernel_axes)

    values = response.abs() if absolute else response
    if absolute:
        drawn = response_axes.imshow(values.numpy(), cmap="magma")
        label = "|response| (intensity × kernel weight)"
    else:
        span = float(values.abs().max()) or 1.0
        drawn = response_axes.imshow(values.numpy(), cmap="RdBu_r", vmin=-span, vmax=span)
        label = "response (intensity × kernel weight)"
    figure.colorbar(drawn, ax=response_axes, fraction=0.046, pad=0.04, label=label)
    kind = "absolute value" if absolute else "signed"
    response_axes.set_title(
        f"response ({kind}), {response.shape[0]}×{response.shape[1]}\n"
        f"no padding: N - F + 1 = {plane.shape[0]} - {size} + 1"
    )
    _pixel_axes(response_axes)
    figure.suptitle(f"Convolution (cross-correlation) with the {title} kernel")
    return figure


def _ink_on(background: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on ``background`` (RGBA): by its relative
    luminance (ITU-R BT.709 weights), as a dark cell of a diverging map needs white text."""
    red, green, blue = background[:3]
    return "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5 else "white"


def _pixel_axes(axes) -> None:
    axes.set_xlabel("x (pixels)")
    axes.set_ylabel("y (pixels)")


def default_feature_layers(model: nn.Module, count: int = 3) -> list[str]:
    """``count`` conv layers spread from the first to the last: early, middle and late features."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise CnnlabError(f"{type(model).__name__} has no Conv2d layer; name layers with --layers")
    picks = sorted({round(i * (len(convs) - 1) / max(1, count - 1)) for i in range(count)})
    return [convs[i] for i in picks]


@torch.no_grad()
def feature_maps(
    model: nn.Module, batch: torch.Tensor, layers: list[str]
) -> dict[str, torch.Tensor]:
    """The output of each named layer for a one-image ``batch`` (see ``feature_extractor``).

    Returns:
        ``{layer: [C, H, W]}`` in the order of ``layers`` (outputs without a spatial map,
        e.g. of a linear layer, come back as ``[C, 1, 1]``).
    """
    extractor = feature_extractor(model.eval(), layers)
    try:
        outputs = extractor(batch)
    finally:
        extractor.remove()
    firsts = {n: out[0] if isinstance(out, tuple) else out for n, out in outputs.items()}
    return {name: _as_maps(first[0].detach().cpu()) for name, first in firsts.items()}


def _as_maps(output: torch.Tensor) -> torch.Tensor:
    if output.dim() == 3:
        return output
    return output.reshape(-1, 1, 1)


def feature_maps_figure(
    display: torch.Tensor, maps: dict[str, torch.Tensor], max_channels: int = 16
) -> Figure:
    """The input image, then the first ``max_channels`` maps of each layer (one row per layer)."""
    columns = min(max_channels, max(m.shape[0] for m in maps.values()))
    per_row = min(columns, 8)
    row_blocks = {name: math.ceil(min(columns, m.shape[0]) / per_row) for name, m in maps.items()}
    rows = 1 + sum(row_blocks.values())
    figure = Figure(figsize=(1.6 * per_row + 1.5, 1.75 * rows + 0.6))
    grid = figure.add_gridspec(rows, per_row + 1, width_ratios=[1] * per_row + [0.12])
    image_axes = figure.add_subplot(grid[0, :2])
    if display.shape[0] == 3:
        image_axes.imshow(display.permute(1, 2, 0).numpy())
    else:
        image_axes.imshow(display[0].numpy(), cmap="gray", vmin=0, vmax=1)
    image_axes.set_title(f"input, {display.shape[1]}×{display.shape[2]} px", fontsize=9)
    image_axes.axis("off")
    row = 1
    for name, layer_maps in maps.items():
        shown = layer_maps[:columns]
        limit = float(shown.abs().max()) or 1.0
        low = -limit if float(shown.min()) < 0 else 0.0
        cmap = "RdBu_r" if low < 0 else "viridis"
        drawn = None
        for index in range(shown.shape[0]):
            axes = figure.add_subplot(grid[row + index // per_row, index % per_row])
            drawn = axes.imshow(shown[index].numpy(), cmap=cmap, vmin=low, vmax=limit)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(f"ch {index}", fontsize=7, pad=2)
            if index % per_row == 0:
                axes.set_ylabel(f"{name}\n{tuple(layer_maps.shape)}", fontsize=7)
        colorbar_axes = figure.add_subplot(grid[row : row + row_blocks[name], per_row])
        figure.colorbar(drawn, cax=colorbar_axes).set_label("activation", fontsize=7)
        colorbar_axes.tick_params(labelsize=6)
        row += row_blocks[name]
    figure.suptitle(
        f"Feature maps of {len(maps)} layer(s), first {columns} channels each (one colour scale "
        "per layer)",
        fontsize=10,
    )
    return figure


def save_feature_maps(
    source: str | Path,
    image: str | Path,
    layers: list[str] | None = None,
    out: str | Path | None = None,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
) -> tuple[Path, dict[str, torch.Tensor], Normalisation]:
    """``cnnlab features``: one image through a model, chosen layers' maps to a PNG.

    ``source`` is MODEL_OR_CHECKPOINT; ``weights``/``weights_file`` go with a model name.
    """
    loaded = load_model(source, weights=weights, weights_file=weights_file)
    batch, display, stats = image_input(image, loaded)
    maps = feature_maps(loaded.model, batch, layers or default_feature_layers(loaded.model))
    figure = feature_maps_figure(display, maps)
    out = out or default_output(source, "features")
    return save_figure(figure, out, inputs=[source, image]), maps, stats


def save_convolution(
    image: str | Path, name: str, out: str | Path | None = None
) -> tuple[Path, torch.Tensor]:
    """``cnnlab convolve``: a grey image convolved with a classic kernel, drawn to a PNG."""
    classic_filter(name)
    grey = read_image(image, channels=1)
    figure = convolve_figure(grey, name)
    response = convolve(grey, name)
    out = out or Path(f"{Path(image).stem}_{name}.png")
    return save_figure(figure, out, inputs=[image]), response
