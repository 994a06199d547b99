"""Muon's step on the speedrun net's filters: cnnlab's against torch.optim.Muon, same run.

torch.optim.Muon orthogonalises every update in bf16; cnnlab's Muon does so only where the
CPU has native bf16 (AVX-512 BF16, AMX) and in float32 elsewhere. This times the
orthogonalisation of each filter bank of ``speedrun_cifar_net`` in both precisions, one step of
each optimizer on all of them (as 2-D views, which is what torch accepts) and, for scale, the
forward and backward pass of a batch of 1,000 images, on one thread as in the recipe's DDP
processes.

    python benchmarks/muon_step.py
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import torch
from torch import nn

from cnnlab.machine import bf16_supported, machine_summary
from cnnlab.models import create_model
from cnnlab.optim.muon import Muon, as_matrix, orthogonalization_dtype, orthogonalize


def seconds_per_call(call, repeats: int) -> float:
    call()  # warm-up
    began = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - began) / repeats


def timing_options(
    doc: str, argv: list[str] | None, *, repeats: int = 3, batch: int | None = None
) -> argparse.Namespace:
    """A timing script's ``--threads`` (default 1, as in the recipe's DDP processes),
    ``--repeats`` and, given a default ``batch``, ``--batch``, parsed and applied: torch's
    threads set, its seed fixed. A count below 1 stops with one line (exit status 2)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=repeats)
    if batch is not None:
        parser.add_argument("--batch", type=int, default=batch, help="images a step")
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def main(argv: list[str] | None = None) -> None:
    args = timing_options(__doc__, argv)
    cpu = torch.device("cpu")
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine_summary(cpu)}; bf16 {'native' if bf16_supported(cpu) else 'off'}")
    model = create_model("speedrun_cifar_net").to(memory_format=torch.channels_last)
    # the filter banks the recipe puts on Muon: every conv but the whitening one, which it freezes
    filters = [
        p for n, p in model.named_parameters() if p.dim() == 4 and not n.startswith("whiten")
    ]
    print(
        "filter banks as matrices: "
        + ", ".join("x".join(map(str, as_matrix(p).shape)) for p in filters)
    )

    for shape in sorted({tuple(as_matrix(p).shape) for p in filters}):
        matrix = torch.randn(shape)
        bf16, fp32 = (
            seconds_per_call(lambda m=matrix, d=d: orthogonalize(m, 5, d), args.repeats)
            for d in (torch.bfloat16, torch.float32)
        )
        print(
            f"Newton-Schulz of a {shape[0]}x{shape[1]} matrix: bf16 {1000 * bf16:7.1f} ms, "
            f"float32 {1000 * fp32:6.1f} ms: {bf16 / fp32:.1f}x"
        )

    ours = Muon([nn.Parameter(p.detach().clone()) for p in filters], lr=0.24, momentum=0.6)
    matrices = [nn.Parameter(as_matrix(p).clone()) for p in filters]
    theirs = torch.optim.Muon(matrices, lr=0.24, momentum=0.6, weight_decay=0.0)
    for group in (*ours.param_groups, *theirs.param_groups):
        for p in group["params"]:
            p.grad = torch.randn_like(p)
    ours_s = seconds_per_call(ours.step, args.repeats)
    theirs_s = seconds_per_call(theirs.step, args.repeats)

    images = torch.randn(1000, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (1000,))

    def forward_backward():
        nn.functional.cross_entropy(model(images), labels).backward()

    step_s = seconds_per_call(forward_backward, args.repeats)
    dtype = str(orthogonalization_dtype(cpu)).removeprefix("torch.")
    rows = [
        ("torch.optim.Muon step (bf16 Newton-Schulz)", theirs_s),
        (f"cnnlab Muon step ({dtype} Newton-Schulz)", ours_s),
        ("forward + backward of 1,000 images", step_s),
    ]
    for label, seconds in rows:
        print(f"{label:<46}{seconds:8.3f} s")
    print(
        f"ratio cnnlab / torch: {ours_s / theirs_s:.3f}; the step's share of forward + backward: "
        f"torch {100 * theirs_s / step_s:.1f}%, cnnlab {100 * ours_s / step_s:.1f}%"
    )


if __name__ == "__main__":
    main()
