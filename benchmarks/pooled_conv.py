"""Does skipping the convolution outputs a max-pool drops make the speedrun net's step faster?

Each conv group of the speedrun net runs a 3x3 "same" convolution into a 2x2 floor-mode
max-pool, on odd sides (31, 15, 7): the pool never reads the last row and column, so 10.8% of
the net's multiply-accumulates go to outputs nobody uses. Padding the input only at the top and
left computes exactly the outputs the pool reads (the same values, fewer positions). This
times both forms of each group's first convolution, forward and backward, with the input's
gradient as in training, on one thread (as each of the recipe's two DDP processes) and a batch
of 1,000, in bf16 where the CPU has it natively:

    python benchmarks/pooled_conv.py
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from muon_step import seconds_per_call  # benchmarks/, the script's own folder

from cnnlab.machine import bf16_supported, machine_summary

# (input channels, side, output channels) of each group's first convolution
GROUP_CONVS = ((24, 31, 64), (64, 15, 256), (256, 7, 256))


def trimmed_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 'same' convolution of an odd-sided ``x`` without the last row and column."""
    return F.conv2d(F.pad(x, [1, 0, 1, 0]), weight)


def conv_step(channels: int, side: int, out_channels: int, trimmed: bool, dtype) -> Callable:
    """One forward and backward of the convolution, 'same' padded or trimmed to the pool."""
    x = torch.randn(1000, channels, side, side, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(out_channels, channels, 3, 3, dtype=dtype, requires_grad=True)

    def step() -> None:
        y = trimmed_conv(x, weight) if trimmed else F.conv2d(x, weight, padding=1)
        y.backward(torch.ones_like(y))

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    dtype = torch.bfloat16 if bf16_supported(cpu) else torch.float32
    print(f"machine: {machine_summary(cpu)}; {dtype}")
    for channels, side, out_channels in GROUP_CONVS:
        times = [
            seconds_per_call(conv_step(channels, side, out_channels, trim, dtype), args.repeats)
            for trim in (False, True)
        ]
        kept = (side - 1) ** 2 / side**2
        print(
            f"{channels:>3} -> {out_channels:>3} on {side}x{side}: same {times[0] * 1e3:6.0f} ms, "
            f"trimmed {times[1] * 1e3:6.0f} ms: time {times[1] / times[0]:.3f}, MACs {kept:.3f}"
        )


if __name__ == "__main__":
    main()
