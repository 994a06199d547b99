"""Filter pictures: every tile is the min-max normalised kernel, and pictures follow the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from viz_checkpoints import read_png, write_checkpoint

from cnnlab.errors import CnnlabError, UnknownNameError
from cnnlab.models import create_model
from cnnlab.viz.filters import filter_grid, filter_grid_figure, find_conv, save_filter_picture


def normalised(kernel: torch.Tensor) -> torch.Tensor:
    return (kernel - kernel.min()) / (kernel.max() - kernel.min())


def test_rgb_first_layer_tiles_are_the_normalised_kernels():
    torch.manual_seed(0)
    weight = create_model("resnet20").conv1.weight  # 16 filters of 3x3x3
    grid = filter_grid(weight, "conv1")
    assert grid.total == (16, 3) and not grid.per_channel
    for index in range(16):
        row, column = divmod(index, grid.tiles_per_row)
        expected = normalised(weight[index].detach())  # one scale for all three colours
        torch.testing.assert_close(grid.tile_at(row, column), expected)


def test_grey_first_layer_and_deeper_layer_per_channel_slices():
    torch.manual_seed(1)
    model = create_model("lenet5_modern")
    c1 = model.features.c1.weight.detach()  # 6 x 1 x 5 x 5
    grid = filter_grid(c1, "c1")
    for index in range(6):
        tile = grid.tile_at(*divmod(index, grid.tiles_per_row))
        for channel in range(3):  # grey drawn as equal RGB
            torch.testing.assert_close(tile[channel], normalised(c1[index, 0]))

    c3 = model.features.c3.weight.detach()  # 16 x 6 x 5 x 5: one tile per (filter, channel)
    deep = filter_grid(c3, "c3")
    assert deep.per_channel and deep.shown == (16, 6) and deep.tiles_per_row == 6
    for filter_index, channel in [(0, 0), (3, 5), (15, 2)]:
        torch.testing.assert_close(
            deep.tile_at(filter_index, channel)[0], normalised(c3[filter_index, channel])
        )
    # separators are not weights
    assert torch.isnan(deep.image[0, 0, :]).all()


def test_figure_shows_the_grid_of_the_requested_layer():
    torch.manual_seed(2)
    model = create_model("lenet5_modern")
    figure = filter_grid_figure(model, "features.c3")
    shown = figure.axes[0].images[0].get_array()
    expected = filter_grid(model.features.c3.weight, "features.c3").image[0].numpy()
    np.testing.assert_array_equal(np.ma.filled(shown, np.nan), expected)
    assert "features.c3" in figure.axes[0].get_title()
    assert figure.axes[0].get_xlabel() == "input channel"


def test_two_checkpoints_give_different_pictures_of_the_same_size(tmp_path):
    first = write_checkpoint(tmp_path / "a" / "best.pt", seed=0)
    second = write_checkpoint(tmp_path / "b" / "best.pt", seed=1)
    path_a, _ = save_filter_picture(first)
    path_b, _ = save_filter_picture(second)
    assert path_a == tmp_path / "a" / "best_filters.png"
    image_a, image_b = read_png(path_a), read_png(path_b)
    assert image_a.shape == image_b.shape and image_a.shape[0] > 150 and image_a.shape[1] > 300
    assert (image_a != image_b).mean() > 0.01
    assert image_a.std() > 10  # not a blank canvas


def test_layer_errors_name_the_choices():
    model = create_model("lenet5_modern")
    with pytest.raises(UnknownNameError, match="features.c3"):
        find_conv(model, "features.c4")
    with pytest.raises(CnnlabError, match="no Conv2d"):
        find_conv(nn.Sequential(nn.Linear(2, 2)))
