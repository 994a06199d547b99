"""The convolution and pooling size arithmetic of the lectures, as functions.

Output size along one axis, for input ``W``, filter ``F``, padding ``P``, stride ``S`` and
dilation ``D`` (a dilated filter spans ``D·(F − 1) + 1`` pixels):

    floor((W − D·(F − 1) − 1 + 2P) / S) + 1        i.e. (W − F + 2P)/S + 1 when D = 1

which is what PyTorch computes. When ``(W − F + 2P)/S`` is not a whole number the stride does
not tile the input: the last pixels are never seen by any window (the lectures' 7×7 input,
3×3 filter, stride 3 gives 2.33). :meth:`AxisWindow.dropped_pixels` says how many, and
:class:`GeometryWarning` is what cnnlab warns with. Pooling with ``ceil_mode=True`` (GoogLeNet)
adds a last, partial window instead of dropping pixels.

Receptive fields of stacked layers follow ``r_out = r_in + (k − 1)·j_in`` and
``j_out = j_in·s``, where ``j`` is the jump: the distance, in input pixels, between adjacent
outputs. Two stacked 3×3 convolutions see 5×5 pixels, three see 7×7.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from cnnlab.errors import GeometryError

PaddingMode = Literal["valid", "same", "full"]


class GeometryWarning(UserWarning):
    """A convolution or pooling whose stride does not tile its input: pixels are dropped."""


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The number of input pixels a dilated filter spans: ``D·(F − 1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output size along one axis of a convolution or pooling, as PyTorch computes it.

    Args:
        size: input size ``W`` along the axis.
        kernel: filter size ``F``.
        stride: stride ``S``.
        padding: zeros added on each side, ``P``.
        dilation: spacing between filter taps, ``D``.
        ceil_mode: round up instead of down (pooling only): a last, partial window is kept
            (even one larger than the input), unless it would start in the right padding.

    Returns:
        The output size; zero when the input is too small for the filter.
    """
    if kernel < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise GeometryError(
            f"kernel ({kernel}), stride ({stride}) and dilation ({dilation}) must be >= 1 and "
            f"padding ({padding}) >= 0"
        )
    span = size + 2 * padding - effective_kernel(kernel, dilation)
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return max(out, 0)


class AxisWindow(NamedTuple):
    """A convolution's or pooling's window along one axis, in :func:`conv_output_size`'s terms.

    One object answers both questions the sizing table asks of a layer on each axis: how many
    outputs (:meth:`output_size`) and how many input pixels no window reads
    (:meth:`dropped_pixels`).
    """

    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    ceil_mode: bool = False

    def output_size(self, size: int) -> int:
        """:func:`conv_output_size` of an input of ``size`` pixels."""
        return conv_output_size(size, *self)

    def dropped_pixels(self, size: int) -> int:
        """How many input pixels at the end of an axis no window ever reads.

        Only real pixels count (padding that no window reaches is harmless), and the gap that a
        stride larger than the filter leaves between every pair of windows is by design, not a
        misfit: a 1×1 convolution with stride 2 reads every other pixel and drops none.
        """
        out = self.output_size(size)
        if out < 1:
            return 0
        span = effective_kernel(self.kernel, self.dilation)
        covered = (out - 1) * self.stride + span
        regular_gap = max(0, self.stride - span)
        return max(0, self.padding + size - covered - regular_gap)


def padding_for_mode(kernel: int, mode: PaddingMode, dilation: int = 1) -> int:
    """Zero padding per side for the lectures' three padding modes.

    ``valid``: no padding, the filter only where it fully overlaps (``w − w_f + 1``).
    ``same``: output as large as the input at stride 1; needs an odd (effective) filter.
    ``full``: every partial overlap too (``w + w_f − 1``).
    """
    span = effective_kernel(kernel, dilation)
    if mode == "valid":
        return 0
    if mode == "full":
        return span - 1
    if mode == "same":
        if span % 2 == 0:
            raise GeometryError(
                f"'same' padding needs an odd filter size, got {span}: an even filter cannot be "
                "centred; use an odd kernel or pad asymmetrically"
            )
        return (span - 1) // 2
    raise GeometryError(f"unknown padding mode '{mode}': use 'valid', 'same' or 'full'")


def same_padding(kernel: int, dilation: int = 1) -> int:
    """Padding per side that keeps the size at stride 1 (``(F − 1)/2`` for odd ``F``)."""
    return padding_for_mode(kernel, "same", dilation)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field ``size`` (input pixels one output sees) and ``jump`` along one axis."""

    size: int = 1
    jump: int = 1

    def then(self, kernel: int, stride: int = 1, dilation: int = 1) -> ReceptiveField:
        """The receptive field after one more layer: ``r + (k − 1)·j`` and ``j·s``."""
        return ReceptiveField(
            size=self.size + (effective_kernel(kernel, dilation) - 1) * self.jump,
            jump=self.jump * stride,
        )


def receptive_field(layers: Iterable[tuple[int, ...]]) -> ReceptiveField:
    """Receptive field of a chain of layers given as ``(kernel, stride[, dilation])`` tuples.

    Example: ``receptive_field([(3, 1)] * 3).size == 7`` (three 3×3 convolutions see 7×7).
    """
    field = ReceptiveField()
    for layer in layers:
        field = field.then(*layer)
    return field


def stacked_receptive_field(kernel: int, count: int) -> int:
    """Receptive field of ``count`` stacked stride-1 ``kernel``×``kernel`` layers."""
    return receptive_field([(kernel, 1)] * count).size


def fractional_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> float:
    """The lectures' ``(W − F + 2P)/S + 1`` before rounding: 2.33 for 7×7, 3×3, stride 3."""
    return (size - effective_kernel(kernel, dilation) + 2 * padding) / stride + 1
