"""Where one training step of the speedrun net spends its time, and whether compiling the
layers between the convolutions (max-pool, BatchNorm, GELU) makes the step faster.

One process, one thread (as each of the recipe's two DDP processes; ``--threads``), a batch of
1,000 (``--batch``), bf16 autocast where the CPU has native bf16, channels_last, BatchNorm
scales and the whitening filters frozen as the recipe freezes them. The profile groups torch's
operators into convolutions, max-pooling, GELU, BatchNorm and the rest; the timing compares the
eager step with one whose conv groups have their pool-BN-GELU runs wrapped in
``torch.compile``:

    python benchmarks/step_profile.py
"""

from __future__ import annotations

from collections import defaultdict

import torch
from muon_step import seconds_per_call, timing_options  # benchmarks/, the script's folder
from torch import nn
from torch.profiler import ProfilerActivity, profile

from cnnlab.machine import bf16_supported, machine_summary
from cnnlab.models import create_model

GROUPS = {"convolution": "convolution", "max_pool": "max-pool", "gelu": "GELU", "batch_norm": "BN"}


def speedrun_net(compiled_parts: bool) -> nn.Module:
    torch.manual_seed(0)
    model = create_model("speedrun_cifar_net")
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.requires_grad_(False)
    model.whiten.weight.requires_grad_(False)
    if compiled_parts:
        for group in (model.block1, model.block2, model.block3):
            group.pool = torch.compile(nn.Sequential(group.pool, group.norm1, group.act1))
            group.norm2 = torch.compile(nn.Sequential(group.norm2, group.act2))
            group.norm1 = group.act1 = group.act2 = nn.Identity()
    return model.to(memory_format=torch.channels_last)


def step_function(model: nn.Module, batch: int, amp: bool):
    images = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = nn.functional.cross_entropy(model(images), labels, label_smoothing=0.2)
        loss.backward()

    return step


def main(argv: list[str] | None = None) -> None:
    args = timing_options(__doc__, argv, repeats=4, batch=1000)
    cpu = torch.device("cpu")
    amp = bf16_supported(cpu)
    print(f"machine: {machine_summary(cpu)}; {'bf16 autocast' if amp else 'float32'}")
    eager = step_function(speedrun_net(False), args.batch, amp)
    eager()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        eager()
    shares: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages():
        if event.key.startswith("aten::"):
            group = next((g for k, g in GROUPS.items() if k in event.key), "other")
            shares[group] += event.self_cpu_time_total
    total = sum(shares.values())
    print("share of a step's operator time (forward + backward):")
    for group, microseconds in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {group:12} {100 * microseconds / total:5.1f}%")
    compiled = step_function(speedrun_net(True), args.batch, amp)
    compiled()  # compiles (seconds_per_call's own warm-up then runs the compiled code)
    eager_s = seconds_per_call(eager, args.repeats)
    compiled_s = seconds_per_call(compiled, args.repeats)
    print(
        f"step, eager: {eager_s:.3f} s ({args.batch / eager_s:,.0f} images/s); "
        f"pool-BN-GELU compiled: {compiled_s:.3f} s"
    )
    print(f"ratio compiled / eager: {compiled_s / eager_s:.3f}")


if __name__ == "__main__":
    main()
