"""Two exact rewrites of the speedrun net's convolutions, timed against torch's own form.

* ``trimmed``: each conv group runs a 3x3 "same" convolution into a 2x2 floor-mode max-pool
  on odd sides (31, 15, 7), so the pool never reads the last row and column: 10.8% of the
  net's multiply-accumulates go to outputs nobody uses. Padding the input only at the top and
  left computes exactly the outputs the pool reads (the same values, fewer positions).
* ``2 x 500``: the batch of 1,000 convolved in two halves and concatenated (the same values;
  BatchNorm would still see the whole batch), in case smaller pieces fit the caches better, as
  whole micro-batches of 500 did (BENCHMARKS.md).

Each of the net's six 3x3 convolutions, forward and backward (with the input's gradient where
training needs it), one thread (as each of the recipe's two DDP processes), a batch of 1,000,
in bf16 where the CPU has it natively; best of ``--repeats``:

    python benchmarks/conv_forms.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from muon_step import timing_options  # benchmarks/, the script's own folder

from cnnlab.machine import bf16_supported, machine_summary

# (input channels, side, output channels, followed by a 2x2 max-pool) of the net's 3x3 convs
NET_CONVS = (
    (24, 31, 64, True),
    (64, 15, 64, False),
    (64, 15, 256, True),
    (256, 7, 256, False),
    (256, 7, 256, True),
    (256, 3, 256, False),
)
BATCH = 1000


def same_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, weight, padding=1)


def trimmed_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 'same' convolution of an odd-sided ``x`` without the last row and column."""
    return F.conv2d(F.pad(x, [1, 0, 1, 0]), weight)


def halves_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 'same' convolution of the batch in two halves."""
    return torch.cat([same_conv(half, weight) for half in x.chunk(2)])


def best_step(conv: Callable, shape: tuple[int, int, int, int], dtype, repeats: int) -> float:
    """Best seconds of one forward and backward of ``conv`` on a random batch."""
    channels, side, out_channels, _ = shape
    x = torch.randn(BATCH, channels, side, side, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(channels != 24)
    weight = torch.randn(out_channels, channels, 3, 3, dtype=dtype, requires_grad=True)
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        began = time.perf_counter()
        y = conv(x, weight)
        y.backward(torch.ones_like(y))
        best = min(best, time.perf_counter() - began)
    return best


def main(argv: list[str] | None = None) -> None:
    args = timing_options(__doc__, argv)
    cpu = torch.device("cpu")
    dtype = torch.bfloat16 if bf16_supported(cpu) else torch.float32
    print(f"machine: {machine_summary(cpu)}; {dtype}; batch {BATCH}; ms, and ratio to 'same'")
    totals = {"same": 0.0, "trimmed": 0.0, "2 x 500": 0.0}
    for shape in NET_CONVS:
        channels, side, out_channels, pooled = shape
        forms = {"same": same_conv, "2 x 500": halves_conv}
        forms |= {"trimmed": trimmed_conv} if pooled else {}
        times = {name: best_step(conv, shape, dtype, args.repeats) for name, conv in forms.items()}
        for name in totals:  # an unpooled conv is its own trimmed form
            totals[name] += times.get(name, times["same"])
        cells = [
            f"{name} {seconds * 1e3:5.0f} ({seconds / times['same']:.3f})"
            for name, seconds in times.items()
        ]
        print(f"{channels:>3} -> {out_channels:>3} on {side:>2}x{side:<2}  " + "   ".join(cells))
    print(
        "six convolutions: "
        + ", ".join(f"{name} {seconds / totals['same']:.3f}" for name, seconds in totals.items())
    )


if __name__ == "__main__":
    main()
