"""The conv/pool size arithmetic against the lectures' worked examples, torch and brute force."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import GeometryError
from cnnlab.sizing import (
    AxisWindow,
    ReceptiveField,
    conv_output_size,
    fractional_output_size,
    padding_for_mode,
    receptive_field,
    same_padding,
    stacked_receptive_field,
)

# (input W, filter F, stride S, padding P, expected output, where the lectures state it)
LECTURE_SIZES = [
    (7, 3, 1, 0, 5, "seeds/000 'Convolution stride': 7×7 input, 3×3 filter -> 5×5"),
    (7, 3, 2, 0, 3, "seeds/000 'Convolution stride': stride 2 -> 3×3"),
    (32, 5, 1, 0, 28, "seeds/000 LeNet question: 32×32×3, 6 filters 5×5 -> 28×28×6"),
    (28, 2, 2, 0, 14, "seeds/000 LeNet: 2×2 pool at stride 2 -> 14×14×6"),
    (227, 11, 4, 0, 55, "seeds/000 AlexNet: 227, 96 11×11 filters at stride 4 -> 55×55×96"),
    (55, 3, 2, 0, 27, "seeds/000 AlexNet: 3×3 pool at stride 2 -> 27×27×96"),
    (27, 5, 1, 2, 27, "seeds/000 AlexNet: 256 5×5 filters, stride 1, pad 2 -> 27×27×256"),
    (13, 3, 2, 0, 6, "seeds/000 AlexNet: 3×3 pool at stride 2 -> 6×6×256"),
    (224, 3, 1, 1, 224, "seeds/001 VGG: 3×3 conv, stride 1, pad 1 keeps 224"),
    (224, 2, 2, 0, 112, "seeds/001 VGG: 2×2 max pool, stride 2 -> 112"),
]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected", "source"), LECTURE_SIZES
)
def test_output_size_matches_lecture_examples(size, kernel, stride, padding, expected, source):
    assert conv_output_size(size, kernel, stride, padding) == expected, source
    assert AxisWindow(kernel, stride, padding).dropped_pixels(size) == 0


def test_stride_that_does_not_fit_is_two_point_three_three_and_drops_one_pixel():
    # seeds/000: 7×7 input, 3×3 filter, stride 3 "is not consistent with input".
    assert fractional_output_size(7, 3, 3) == pytest.approx(7 / 3)
    assert conv_output_size(7, 3, 3) == 2
    assert AxisWindow(3, 3).dropped_pixels(7) == 1
    # Padding of 1 makes it fit: (7 - 3 + 2)/3 + 1 = 3.
    assert fractional_output_size(7, 3, 3, padding=1) == 3
    assert AxisWindow(3, 3, padding=1).dropped_pixels(7) == 0


def test_padding_modes_follow_the_lecture():
    # seeds/000: full convolution gives w + w_f - 1 (32×32 input, 4×4 filter -> 35×35),
    # valid gives w - w_f + 1, same keeps w.
    assert conv_output_size(32, 4, padding=padding_for_mode(4, "full")) == 35
    assert conv_output_size(32, 4, padding=padding_for_mode(4, "valid")) == 29
    assert conv_output_size(32, 5, padding=padding_for_mode(5, "same")) == 32
    assert same_padding(3) == 1 and same_padding(3, dilation=2) == 2
    assert conv_output_size(32, 3, padding=same_padding(3, 2), dilation=2) == 32


def test_same_padding_of_an_even_filter_and_unknown_modes_are_errors():
    with pytest.raises(GeometryError, match="odd"):
        same_padding(4)
    with pytest.raises(GeometryError, match="valid"):
        padding_for_mode(3, "half")
    with pytest.raises(GeometryError):
        conv_output_size(7, 3, stride=0)


def test_too_small_input_gives_zero():
    assert conv_output_size(2, 3) == 0
    assert conv_output_size(1, 2, 2) == 0


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 5),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_output_size_equals_torch_conv(size, kernel, stride, padding, dilation):
    span = dilation * (kernel - 1) + 1
    expected = (size + 2 * padding - span) // stride + 1 if size + 2 * padding >= span else 0
    if expected > 0:  # torch refuses empty outputs; check it where it has an answer
        x = torch.empty(1, 1, size, size, device="meta")
        w = torch.empty(1, 1, kernel, kernel, device="meta")
        out = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
        expected = out.shape[-1]
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 4),
    padding=st.integers(0, 2),
    ceil_mode=st.booleans(),
)
def test_pool_output_size_equals_torch_max_pool(size, kernel, stride, padding, ceil_mode):
    if 2 * padding > kernel:
        return  # torch rejects such a pool whatever the input
    x = torch.empty(1, 1, size, size, device="meta")
    try:
        expected = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode).shape[-1]
    except RuntimeError:  # "Output size is too small"
        expected = 0
    assert conv_output_size(size, kernel, stride, padding, ceil_mode=ceil_mode) == expected


def _last_tap(size, kernel, stride, padding, ceil_mode):
    """Brute force: walk every window torch evaluates; the last position any tap touches."""
    start, last = -padding, -padding
    for _ in range(conv_output_size(size, kernel, stride, padding, ceil_mode=ceil_mode)):
        last = start + kernel - 1
        start += stride
    return last


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 30),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 5),
    padding=st.integers(0, 2),
    ceil_mode=st.booleans(),
)
def test_dropped_pixels_are_the_unread_tail(size, kernel, stride, padding, ceil_mode):
    """Dropped = real pixels after the last one read, beyond the stride's regular gap."""
    if conv_output_size(size, kernel, stride, padding, ceil_mode=ceil_mode) < 1:
        return
    tail = size - 1 - _last_tap(size, kernel, stride, padding, ceil_mode)
    regular_gap = max(0, stride - kernel)
    window = AxisWindow(kernel, stride, padding, ceil_mode=ceil_mode)
    assert window.dropped_pixels(size) == max(0, tail - regular_gap)


def test_ceil_mode_pools_drop_nothing_where_floor_would():
    # GoogLeNet's 3×3/2 max pools use ceil_mode: 112 -> 56 with a partial last window.
    assert conv_output_size(112, 3, 2, ceil_mode=True) == 56
    assert AxisWindow(3, 2, ceil_mode=True).dropped_pixels(112) == 0
    assert AxisWindow(3, 2).dropped_pixels(112) == 1


def test_stacked_three_by_three_fields_are_five_and_seven():
    # seeds/001 VGGNet: two 3×3 convs see 5×5, three see 7×7.
    assert stacked_receptive_field(3, 2) == 5
    assert stacked_receptive_field(3, 3) == 7
    assert receptive_field([(3, 1)] * 3) == ReceptiveField(size=7, jump=1)


def _receptive_field_by_gradient(layers, size=64):
    """Independent reference: the input pixels whose gradient reaches the central output."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = x
    for kernel, stride, dilation in layers:
        weight = torch.ones(1, 1, kernel, kernel)
        y = F.conv2d(y, weight, stride=stride, dilation=dilation)
    center = y.shape[-1] // 2
    y[0, 0, center, center].backward()
    columns = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    return int(columns.max() - columns.min() + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [(3, 1, 1), (3, 1, 1)],
        [(3, 1, 1)] * 3,
        [(7, 2, 1), (3, 2, 1), (3, 1, 1)],
        [(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)],
        [(3, 1, 2), (3, 1, 4)],
    ],
)
def test_receptive_field_matches_gradient_footprint(layers):
    assert receptive_field(layers).size == _receptive_field_by_gradient(layers)


def test_jump_is_product_of_strides():
    assert receptive_field([(7, 2), (3, 2), (3, 1)]) == ReceptiveField(
        size=7 + 2 * 2 + 2 * 4, jump=4
    )
