"""benchmarks/conv_forms.py: its rewrites of a convolution compute the same values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(scope="module")
def script(load_benchmark):
    return load_benchmark("conv_forms")


@pytest.mark.parametrize("side", [7, 15, 31])
def test_trimmed_conv_is_the_same_conv_without_the_dropped_row_and_column(script, side):
    torch.manual_seed(side)
    x = torch.randn(2, 3, side, side, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    same = F.conv2d(x, weight, padding=1)
    trimmed = script.trimmed_conv(x, weight)
    assert trimmed.shape[-2:] == (side - 1, side - 1)
    torch.testing.assert_close(trimmed, same[..., :-1, :-1])
    torch.testing.assert_close(F.max_pool2d(trimmed, 2), F.max_pool2d(same, 2))


def test_halves_conv_is_the_same_conv(script):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 9, 9, dtype=torch.float64)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(script.halves_conv(x, weight), F.conv2d(x, weight, padding=1))
