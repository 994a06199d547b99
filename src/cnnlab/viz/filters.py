"""Learned convolution kernels as pictures (Krizhevsky et al. 2012, Fig. 3: 96 filters of 11×11×3).

A first-layer kernel sees the image's own colour channels, so each one can be drawn as a small
RGB (or grey) picture; every kernel is min-max normalised on its own, because the filters differ
in scale and a shared scale would leave most of them flat grey. A deeper layer's kernel has as
many channels as the layer below has feature maps, which no colour picture can show: there each
(output filter, input channel) slice is drawn as its own grey tile, normalised on its own, one
row per output filter and one column per input channel (the first ``max_filters`` ×
``max_channels`` of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn
from torchvision.utils import make_grid

from cnnlab.errors import CnnlabError, unknown_name


@dataclass
class FilterGrid:
    """Kernels laid out as one image.

    Attributes:
        layer: the conv layer's module name.
        image: float ``[3, H, W]``; tiles in [0, 1], separators NaN.
        tiles_per_row: tiles in one row of the grid.
        padding: separator width in pixels.
        tile: ``(height, width)`` of one kernel.
        per_channel: True when tiles are single input-channel slices of a deeper layer.
        shown: ``(filters, channels)`` drawn; ``total``: ``(filters, channels)`` in the layer.
    """

    layer: str
    image: torch.Tensor
    tiles_per_row: int
    padding: int
    tile: tuple[int, int]
    per_channel: bool
    shown: tuple[int, int]
    total: tuple[int, int]

    def tile_at(self, row: int, column: int) -> torch.Tensor:
        """The pixels of the tile in grid position (row, column), ``[3, kh, kw]``."""
        kh, kw = self.tile
        top = self.padding + row * (kh + self.padding)
        left = self.padding + column * (kw + self.padding)
        return self.image[:, top : top + kh, left : left + kw]


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every ``nn.Conv2d`` of ``model``, in definition order, with its module name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def find_conv(model: nn.Module, layer: str | None = None) -> tuple[str, nn.Conv2d]:
    """The conv layer called ``layer``, or the first one.

    Raises:
        CnnlabError: the model has no conv layer, or ``layer`` is not one of them.
    """
    convs = conv_layers(model)
    if not convs:
        raise CnnlabError(f"{type(model).__name__} has no Conv2d layer to draw")
    if layer is None:
        return convs[0]
    names = [name for name, _ in convs]
    if layer not in names:
        raise unknown_name("conv layer", layer, names, f"choose one of {', '.join(names[:8])}, ...")
    return convs[names.index(layer)]


def min_max(tiles: torch.Tensor) -> torch.Tensor:
    """Scale each tile (dim 0) to [0, 1] on its own; a constant tile becomes 0.5."""
    flat = tiles.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.full_like(flat, 0.5))
    return scaled.view_as(tiles)


def filter_grid(
    weight: torch.Tensor,
    layer: str = "conv",
    *,
    max_filters: int = 32,
    max_channels: int = 16,
    padding: int = 1,
) -> FilterGrid:
    """Lay the kernels of a conv weight ``[out, in, kh, kw]`` out as one picture.

    With 3 input channels each kernel is an RGB tile, with 1 a grey tile (all filters shown);
    otherwise each of the first ``max_filters`` × ``max_channels`` slices is a grey tile,
    one row per filter.
    """
    weight = weight.detach().float().cpu()
    out_channels, in_channels, kh, kw = weight.shape
    if in_channels in (1, 3):
        tiles = min_max(weight)
        per_row = min(out_channels, max(8, math.ceil(math.sqrt(out_channels))))
        shown = (out_channels, in_channels)
    else:
        shown = (min(out_channels, max_filters), min(in_channels, max_channels))
        slices = weight[: shown[0], : shown[1]].reshape(-1, 1, kh, kw)
        tiles, per_row = min_max(slices), shown[1]
    image = make_grid(tiles, nrow=per_row, padding=padding, pad_value=float("nan"))
    return FilterGrid(
        layer=layer,
        image=image,
        tiles_per_row=per_row,
        padding=padding,
        tile=(kh, kw),
        per_channel=in_channels not in (1, 3),
        shown=shown,
        total=(out_channels, in_channels),
    )


def filter_grid_figure(model: nn.Module, layer: str | None = None) -> Figure:
    """The kernels of ``layer`` (default: the first conv layer) as a labelled figure."""
    name, conv = find_conv(model, layer)
    grid = filter_grid(conv.weight, name)
    return grid_figure(grid)


def grid_figure(grid: FilterGrid) -> Figure:
    """Draw a ``FilterGrid``: RGB tiles as colour, grey tiles with a colour bar."""
    image = grid.image
    height, width = image.shape[1:]
    scale = min(9.0 / width, 9.0 / height)
    # the compressed layout makes room for the colour bar's label (tight_layout cut it off)
    # and keeps the axis labels of a square grid inside the frame (constrained did not)
    figure = Figure(
        figsize=(max(5.0, width * scale + 2.4), max(3.5, height * scale + 1.4)),
        layout="compressed",
    )
    axes = figure.add_subplot()
    (filters, channels), (all_filters, all_channels) = grid.shown, grid.total
    kh, kw = grid.tile
    if grid.total[1] == 3:
        axes.imshow(
            torch.nan_to_num(image, nan=1.0).permute(1, 2, 0).numpy(), interpolation="nearest"
        )
        title = f"{grid.layer}: {all_filters} learned {kh}×{kw}×3 filters (RGB)"
        note = "each filter min-max normalised on its own (dark = its most negative weights)"
    else:
        from matplotlib import colormaps

        cmap = colormaps["gray"].with_extremes(bad="#4a7fbf")
        shown = axes.imshow(image[0].numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        colorbar = figure.colorbar(
            shown, ax=axes, fraction=0.046 * min(1.0, height / width), pad=0.04
        )
        colorbar.set_label("weight, min-max normalised per tile\n(0 = min, 1 = max)")
        if grid.per_channel:
            title = (
                f"{grid.layer}: {kh}×{kw} kernels, filters 0-{filters - 1} of {all_filters} × "
                f"input channels 0-{channels - 1} of {all_channels}"
            )
            note = "one grey tile per (filter, input channel) slice, each normalised on its own"
        else:
            title = f"{grid.layer}: {all_filters} learned {kh}×{kw}×1 filters"
            note = "each filter min-max normalised on its own (black = its most negative weight)"
    axes.set_title(f"{title}\n{note}", fontsize=10)
    _label_tiles(axes, grid)
    return figure


def _label_tiles(axes, grid: FilterGrid) -> None:
    """Tick each tile's centre with its filter (rows) and channel or column (columns) index."""
    kh, kw = grid.tile
    rows = (grid.image.shape[1] - grid.padding) // (kh + grid.padding)
    columns = grid.tiles_per_row
    step_rows = max(1, rows // 16)
    step_columns = max(1, columns // 16)
    row_ticks = range(0, rows, step_rows)
    column_ticks = range(0, columns, step_columns)
    axes.set_yticks([grid.padding + r * (kh + grid.padding) + (kh - 1) / 2 for r in row_ticks])
    axes.set_xticks([grid.padding + c * (kw + grid.padding) + (kw - 1) / 2 for c in column_ticks])
    if grid.per_channel:
        axes.set_yticklabels([str(r) for r in row_ticks])
        axes.set_xticklabels([str(c) for c in column_ticks])
        axes.set_ylabel("output filter")
        axes.set_xlabel("input channel")
    else:
        axes.set_yticklabels([str(r * columns) for r in row_ticks])
        axes.set_xticklabels([f"+{c}" for c in column_ticks])
        axes.set_ylabel("filter index (row start)")
        axes.set_xlabel("filter index offset within the row")
    axes.tick_params(labelsize=8)


def save_filter_picture(
    source: str | Path,
    layer: str | None = None,
    out: str | Path | None = None,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
) -> tuple[Path, FilterGrid]:
    """``cnnlab filters``: draw a checkpoint's (or a named model's) kernels to a PNG.

    ``source`` is MODEL_OR_CHECKPOINT; ``weights``/``weights_file`` go with a model name (its
    initial weights without them).
    """
    from cnnlab.viz.inputs import default_output, load_model, save_figure

    loaded = load_model(source, weights=weights, weights_file=weights_file)
    name, conv = find_conv(loaded.model, layer)
    grid = filter_grid(conv.weight, name)
    figure = grid_figure(grid)
    suffix = "filters" if layer is None else f"filters_{name.replace('.', '_')}"
    return save_figure(figure, out or default_output(source, suffix), inputs=[source]), grid
