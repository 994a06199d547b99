"""The smallest input a network takes, and the error that names it.

Both the sizing tracer and the meta-device builder of specs (``cnnlab.models.resolve``) turn
"this input is too small" into advice: the smallest square input that works, found by a
search over sides. The search only needs a ``fits(side)`` predicate, so it lives here, below
both of them.
"""

from __future__ import annotations

from collections.abc import Callable

from cnnlab.errors import GeometryError
from cnnlab.geometry.units import dims

LARGEST_SEARCHED_INPUT = 8192


def smallest_square_input(fits: Callable[[int], bool], start: int) -> int | None:
    """The smallest side ``s`` for which ``fits(s)``: gallop up from ``start``, then bisect.

    Assumes that a network which fits an input fits every larger one, which holds for the
    emptiness of conv and pool outputs (each output size grows with its input size).
    """
    low, high = 0, max(start, 1)
    while not fits(high):
        low, high = high, high * 2
        if high > LARGEST_SEARCHED_INPUT:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


def too_small_error(
    label: str, input_size: tuple[int, ...], problem: str, smallest: int | None
) -> GeometryError:
    """The one-line error for an input too small for ``label``, with the smallest that works."""
    if smallest is None:
        advice = f"no square input up to {LARGEST_SEARCHED_INPUT} pixels works"
    else:
        advice = f"the smallest input that works is {dims(square_input(input_size, smallest))}"
    return GeometryError(f"input {dims(input_size)} is too small for {label}: {problem}; {advice}")


def square_input(input_size: tuple[int, ...], side: int) -> tuple[int, ...]:
    """``input_size`` with every spatial side set to ``side`` (channels kept)."""
    return (input_size[0], *(side,) * (len(input_size) - 1))
