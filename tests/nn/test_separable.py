"""Depthwise separable convolution and the lecture's cost ratio 1/N + 1/D_K²."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.nn.separable import SeparableConv2d, separable_cost_ratio

# (M input channels, N output channels, D_K kernel, D_F input side, stride)
GEOMETRIES = [
    (32, 64, 3, 112, 1),
    (64, 128, 3, 112, 2),
    (512, 512, 3, 14, 1),
    (16, 24, 5, 20, 1),
    (3, 7, 7, 15, 2),
]


def _macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds as torch's own FLOP counter reports them (FLOPs / 2)."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(("m", "n", "k", "side", "stride"), GEOMETRIES)
def test_cost_ratio_matches_mult_adds_counted_by_hand(m, n, k, side, stride):
    d_g = (side + 2 * (k // 2) - k) // stride + 1
    standard = k * k * m * n * d_g * d_g  # the lecture: D_K·D_K·M·N·D_G·D_G
    separable = k * k * m * d_g * d_g + m * n * d_g * d_g  # D_K·D_K·M·D_G² + M·N·D_G²
    assert separable_cost_ratio(n, k) == pytest.approx(separable / standard, rel=1e-12)


@pytest.mark.parametrize(("m", "n", "k", "side", "stride"), GEOMETRIES)
def test_cost_ratio_matches_mult_adds_of_real_layers(m, n, k, side, stride):
    with torch.device("meta"):
        x = torch.empty(1, m, side, side)
        standard = nn.Conv2d(m, n, k, stride, padding=k // 2, bias=False)
        separable = SeparableConv2d(m, n, k, stride)
        ratio = _macs(separable, x) / _macs(standard, x)
    assert ratio == pytest.approx(separable_cost_ratio(n, k), rel=1e-12)
    assert separable.cost_ratio() == separable_cost_ratio(n, k)


@pytest.mark.parametrize(("m", "n", "k"), [(32, 64, 3), (256, 512, 3), (8, 16, 5)])
def test_parameter_ratio_is_the_same_fraction(m, n, k):
    # The lecture: (D_K·D_K·M + M·N) / (D_K·D_K·M·N) = 1/N + 1/D_K² as well.
    separable = SeparableConv2d(m, n, k, norm_layer=None, activation_layer=None)
    standard = nn.Conv2d(m, n, k, bias=False)
    weights = sum(p.numel() for p in separable.parameters())
    assert weights == k * k * m + m * n
    assert weights / standard.weight.numel() == pytest.approx(separable_cost_ratio(n, k))


def test_lecture_example_values():
    assert cnnlab.separable_cost_ratio is separable_cost_ratio  # part of the public API
    assert separable_cost_ratio(64, 3) == pytest.approx(1 / 64 + 1 / 9)
    assert round(separable_cost_ratio(64, 3), 3) == 0.127
    # Large N: a 3×3 separable conv is close to 9× cheaper.
    assert 1 / separable_cost_ratio(1024, 3) == pytest.approx(8.92, abs=0.01)


def test_summary_note_shows_the_ratio():
    note = SeparableConv2d(32, 64).summary_note()
    assert note == "separable/standard = 1/N + 1/D_K² = 1/64 + 1/9 = 0.127"


@pytest.mark.parametrize(
    ("out_channels", "kernel_size"), [(0, 3), (64, 0), (-4, 3), (64, 2.5), (True, 3), ("64", 3)]
)
def test_cost_ratio_rejects_bad_sizes(out_channels, kernel_size):
    with pytest.raises(ConfigError, match="must be a positive integer") as raised:
        separable_cost_ratio(out_channels, kernel_size)
    assert isinstance(raised.value, CnnlabError)


def test_mobilenet_form_has_bn_relu_after_both_steps():
    block = SeparableConv2d(16, 32, 3, stride=2)
    depthwise, pointwise = block.depthwise, block.pointwise
    assert [type(m) for m in depthwise] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in pointwise] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert depthwise[0].groups == 16 and depthwise[0].stride == (2, 2)
    assert depthwise[0].weight.shape == (16, 1, 3, 3)
    assert pointwise[0].weight.shape == (32, 16, 1, 1)
    assert depthwise[0].bias is None and pointwise[0].bias is None
    assert block(torch.randn(2, 16, 9, 9)).shape == (2, 32, 5, 5)


def test_xception_form_has_nothing_between_the_steps():
    block = SeparableConv2d(16, 32, depthwise_norm=False, activation_layer=None)
    assert [type(m) for m in block.depthwise] == [nn.Conv2d]
    assert [type(m) for m in block.pointwise] == [nn.Conv2d, nn.BatchNorm2d]
    # Without a non-linearity in between, the pair is one linear map: check it against the
    # equivalent standard conv whose kernel is the product of the two.
    block.eval()
    x = torch.randn(2, 16, 6, 6)
    dw = block.depthwise[0].weight  # (M, 1, k, k)
    pw = block.pointwise[0].weight[:, :, 0, 0]  # (N, M)
    fused = pw[:, :, None, None] * dw[None, :, 0]  # (N, M, k, k)
    expected = block.pointwise[1](nn.functional.conv2d(x, fused, padding=1))
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)
