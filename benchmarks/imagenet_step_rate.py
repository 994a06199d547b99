"""Training images/s at 224x224 for the ImageNet nets, and what a full recipe would cost.

For each model (default AlexNet, VGG-16, ResNet-50) this times a forward + backward + SGD
step on random 224x224 images, cnnlab's way (its model, channels_last, bf16 autocast where
the device runs bf16 natively) and, as the reference in the same run, torchvision's twin of
the model in float32 NCHW. It prints both rates, their ratio, and the hours one ImageNet
epoch (1,281,167 images) and the paper recipe's epochs would take at cnnlab's rate. The
data pipeline is left out (a real run also decodes JPEGs), so the estimate is a lower bound.
Example (a few minutes on 2 CPU cores)::

    python benchmarks/imagenet_step_rate.py --batch-size 16 --steps 3
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torchvision
from torch import nn

from cnnlab.machine import bf16_supported, machine_summary
from cnnlab.models import create_model
from cnnlab.training.recipes import list_recipes

IMAGENET_TRAIN_IMAGES = 1_281_167


def step_rate(model: nn.Module, batch: int, steps: int, device, cnnlab_way: bool) -> float:
    """Images/s of ``steps`` timed training steps (after one untimed warm-up step)."""
    model = model.to(device).train()
    images = torch.randn(batch, 3, 224, 224, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    amp = cnnlab_way and bf16_supported(device)
    if cnnlab_way:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            output = model(images)
            logits = output[0] if isinstance(output, tuple) else output
            loss = nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["alexnet", "vgg16", "resnet50"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision = "bf16 autocast" if bf16_supported(device) else "float32"
    print(
        f"machine: {machine_summary(device)}; cnnlab {precision} channels_last vs "
        f"torchvision float32 NCHW; batch {args.batch_size}"
    )
    epochs = {r.model: r.settings.get("epochs") for r in list_recipes()}
    for model_name in args.models:
        torch.manual_seed(0)
        ours = step_rate(create_model(model_name), args.batch_size, args.steps, device, True)
        reference = torchvision.models.get_model(model_name, weights=None)
        theirs = step_rate(reference, args.batch_size, args.steps, device, False)
        epoch_hours = IMAGENET_TRAIN_IMAGES / ours / 3600
        recipe_epochs = epochs.get(model_name)
        total = ""
        if recipe_epochs:
            total = f", {recipe_epochs} epochs {epoch_hours * recipe_epochs:.0f} h"
        print(
            f"{model_name:10s} cnnlab {ours:7.1f} img/s  torchvision {theirs:7.1f} img/s  "
            f"ratio {ours / theirs:.2f}x  ImageNet epoch {epoch_hours:.1f} h{total}"
        )


if __name__ == "__main__":
    main()
