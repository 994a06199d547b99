"""Classic kernels as the lecture shows them, and feature maps read by forward hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import correlate2d
from viz_checkpoints import read_png, write_checkpoint, write_png

from cnnlab.errors import UnknownNameError
from cnnlab.models import create_model
from cnnlab.viz.features import (
    BLOB,
    SOBEL_HORIZONTAL,
    SOBEL_VERTICAL,
    classic_filter,
    convolve,
    default_feature_layers,
    feature_maps,
    save_convolution,
    save_feature_maps,
)

# Lecture 4, "Feature Detection" and "Convolution Example: Sobel Filter" / "Blob Detection".
LECTURE_SOBEL_VERTICAL = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
LECTURE_SOBEL_HORIZONTAL = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
LECTURE_BLOB_CENTRE_ROW = [2, 5, 0, -23, -40, -23, 0, 5, 2]


def test_kernels_are_the_lectures():
    assert SOBEL_VERTICAL.tolist() == LECTURE_SOBEL_VERTICAL
    assert SOBEL_HORIZONTAL.tolist() == LECTURE_SOBEL_HORIZONTAL
    assert BLOB.shape == (9, 9) and BLOB[4].tolist() == LECTURE_BLOB_CENTRE_ROW
    assert torch.equal(BLOB, BLOB.t()) and torch.equal(BLOB, BLOB.flip(0))


def test_sobel_responds_on_a_vertical_edge_and_is_zero_on_flat_regions():
    image = torch.zeros(20, 24)
    image[:, 12:] = 1.0  # dark left half, bright right half
    vertical = convolve(image, "sobel-v")
    assert vertical.shape == (18, 22)  # N - F + 1, no padding
    # output column j sees input columns j..j+2: the edge (between 11 and 12) is in j = 10, 11
    edge_columns = vertical.abs().sum(dim=0).nonzero().flatten().tolist()
    assert edge_columns == [10, 11]
    assert torch.all(vertical[:, 10:12] == -4.0)  # 1+2+1 times the -1 column
    assert convolve(image, "sobel-h").abs().max() == 0  # no horizontal edge anywhere
    reference = correlate2d(image.numpy(), SOBEL_VERTICAL.numpy(), mode="valid")
    np.testing.assert_allclose(vertical.numpy(), reference)


def test_blob_detector_peaks_on_a_blob_of_its_size():
    image = torch.zeros(41, 41)
    yy, xx = torch.meshgrid(torch.arange(41), torch.arange(41), indexing="ij")
    image[((yy - 25) ** 2 + (xx - 14) ** 2) <= 4] = 1.0  # a small bright disc at (25, 14)
    response = convolve(image, "blob")
    reference = F.conv2d(image[None, None], BLOB[None, None])[0, 0]
    torch.testing.assert_close(response, reference)
    # the negative centre of the kernel answers most strongly where the disc is centred
    row, column = divmod(int(response.argmin()), response.shape[1])
    assert (row + 4, column + 4) == (25, 14)
    assert response[:5, 25:].abs().max() == 0  # far from the disc: flat, no response


def test_unknown_filter_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="sobel-v"):
        classic_filter("sobel-x")


def test_feature_maps_equal_the_layers_outputs_and_hooks_are_removed():
    torch.manual_seed(0)
    model = create_model("lenet5_modern").eval()
    batch = torch.randn(1, 1, 32, 32)
    maps = feature_maps(model, batch, ["features.c1", "features.c3_act"])
    c1 = model.features.c1
    torch.testing.assert_close(maps["features.c1"], F.conv2d(batch, c1.weight, c1.bias)[0])
    expected = model.features[:5](batch)[0]  # c1, act, s2, c3, act
    torch.testing.assert_close(maps["features.c3_act"], expected)
    assert all(not m._forward_hooks for m in model.modules())
    assert default_feature_layers(model) == ["features.c1", "features.c3", "features.c5"]
    with pytest.raises(UnknownNameError):
        feature_maps(model, batch, ["features.c9"])


def test_commands_write_pictures_that_follow_the_image(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "run" / "best.pt")
    stripes = np.zeros((40, 40), np.uint8)
    stripes[:, ::8] = 255
    ring = np.zeros((40, 40), np.uint8)
    ring[10:30, 10:30] = 255
    ring[15:25, 15:25] = 0
    first = write_png(tmp_path / "stripes.png", stripes)
    second = write_png(tmp_path / "ring.png", ring)
    path_a, maps_a, stats = save_feature_maps(checkpoint, first, out=tmp_path / "a.png")
    path_b, maps_b, _ = save_feature_maps(checkpoint, second, out=tmp_path / "b.png")
    assert stats.source == "the digits training set"
    assert not torch.allclose(maps_a["features.c1"], maps_b["features.c1"])
    picture_a, picture_b = read_png(path_a), read_png(path_b)
    assert picture_a.shape == picture_b.shape and picture_a.shape[0] > 400
    assert (picture_a != picture_b).mean() > 0.01

    path, response = save_convolution(first, "sobel-v", out=tmp_path / "edges.png")
    assert response.shape == (38, 38)
    assert read_png(path).shape[1] > 800
