"""ResNet-20 on CIFAR-10: cnnlab's training engine against a plain, tutorial-style PyTorch loop.

Both train the same network (cnnlab's ``resnet20``, same initial weights) for the same
epochs with the same optimizer (SGD, momentum 0.9, weight decay 1e-4) and schedule (cosine,
stepped per iteration), on the same images, in one run on this machine. The plain loop is
what a tutorial writes: ``ImageFolder`` + ``DataLoader(num_workers=2)`` with
``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize``, float32.
cnnlab decodes the JPEGs once into a uint8 tensor (cached next to the data), augments whole
batches with tensor ops, and trains with bf16 autocast (where the CPU has it) and
channels_last.

On a CPU, ``--processes 1,2`` also measures cnnlab as ``torchrun --nproc_per_node 2``: two
one-thread processes keep both cores busier than one two-thread process does on a small
network (the batch of 128 is split between them; DDP averages the gradients).

Prints the images/s of both (training loop only, evaluation excluded), their ratio, and both
test accuracies. Example (a few minutes on 2 CPU cores)::

    python benchmarks/train_cifar.py --epochs 1 --train-subset 10000 --processes 1,2
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from cifar_data import add_data_arguments, prepare_data
from torch import nn
from torchvision import transforms

from cnnlab.data import load_dataset
from cnnlab.machine import bf16_supported
from cnnlab.models import create_model
from cnnlab.run_metrics import read_metrics
from cnnlab.training import train


def plain_pytorch(data_root: Path, args, mean, std) -> tuple[float, float]:
    """The loop a tutorial writes; returns (training images/s, test top-1 %)."""
    normalize = transforms.Normalize(mean, std)
    train_set = torchvision.datasets.ImageFolder(
        data_root / "train",
        transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        ),
    )
    test_set = torchvision.datasets.ImageFolder(
        data_root / "test", transforms.Compose([transforms.ToTensor(), normalize])
    )
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, num_workers=2
    )
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=256, num_workers=2)
    torch.manual_seed(args.seed)
    model = create_model("resnet20", num_classes=10, in_chans=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=args.epochs * len(train_loader)
    )
    criterion = nn.CrossEntropyLoss()
    images_seen, train_time = 0, 0.0
    for epoch in range(args.epochs):
        model.train()
        start = time.perf_counter()
        running_loss = 0.0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running_loss += loss.item()
            images_seen += labels.shape[0]
        train_time += time.perf_counter() - start
        print(f"  plain epoch {epoch + 1}: loss {running_loss / len(train_loader):.4f}", flush=True)
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in test_loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += labels.shape[0]
    return images_seen / train_time, 100 * correct / total


def cnnlab_engine(data_root: Path, args, processes: int) -> tuple[float, float]:
    """cnnlab's engine on the same data; returns (training images/s, test top-1 %).

    With ``--processes N`` it is the documented multi-process command, ``torchrun
    --nproc_per_node N -m cnnlab.cli train ...``: N one-thread processes (DDP over gloo, the
    batch of 128 split between them) instead of one process with N threads.
    """
    from rich.console import Console

    out = Path(tempfile.mkdtemp(prefix="cnnlab-bench-")) / "run"
    options = {
        "model": "resnet20",
        "data": "cifar10",
        "data_dir": str(data_root),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "momentum",
        "lr": args.lr,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "cosine",
        "seed": args.seed,
        "out": str(out),
    }
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc_per_node", str(processes), "-m", "cnnlab.cli", "train"]
        command += [options.pop("model")]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        subprocess.run(command, check=True)
        metrics = read_metrics(out / "metrics.csv")
    else:
        metrics = train(**options, console=Console()).metrics
    # every epoch trains the same number of images: the overall rate is the harmonic mean
    seconds_per_image = sum(1 / row["images_per_s"] for row in metrics)
    return len(metrics) / seconds_per_image, metrics[-1]["test_top1"]


def process_counts(text: str) -> list[int]:
    """``--processes 1,2``: positive process counts, or argparse's one-line usage error."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected counts like 1 or 1,2, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--processes",
        type=process_counts,
        default=[1],
        help="cnnlab side only, comma-separated: one process with all threads (1), or N "
        "one-thread torchrun processes (DDP over gloo); e.g. 1,2 measures both",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data_root = prepare_data(args)
    decode_start = time.perf_counter()
    dataset = load_dataset("cifar10", data_dir=str(data_root))
    print(
        f"cnnlab decoded/cached {len(dataset.train.labels)} + {len(dataset.test.labels)} images "
        f"in {time.perf_counter() - decode_start:.1f}s (once; later runs read the cache)",
        flush=True,
    )
    mean, std = list(dataset.mean), list(dataset.std)

    fast = {}
    for processes in args.processes:
        print(f"cnnlab engine, {processes} process(es) ...", flush=True)
        fast[processes] = cnnlab_engine(data_root, args, processes)
    print("plain PyTorch loop ...", flush=True)
    plain_speed, plain_top1 = plain_pytorch(data_root, args, mean, std)

    cpu = platform.processor() or platform.machine()
    try:
        cpu = (
            subprocess.run(
                ["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            or cpu
        )
    except OSError:
        pass
    print()
    bf16 = "bf16" if bf16_supported(torch.device("cpu")) else "no native bf16: float32"
    print(f"machine: {cpu} ({bf16}), {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(
        f"ResNet-20, {len(dataset.train.labels)} training images x {args.epochs} epoch(s), "
        f"batch {args.batch_size}, SGD momentum 0.9, cosine from lr {args.lr}"
    )
    print(f"plain PyTorch loop: {plain_speed:8.1f} images/s   test top-1 {plain_top1:.2f}%")
    for processes, (fast_speed, fast_top1) in fast.items():
        label = "cnnlab engine:" if processes == 1 else f"cnnlab, {processes} processes:"
        print(
            f"{label:19} {fast_speed:8.1f} images/s   test top-1 {fast_top1:.2f}%   "
            f"ratio {fast_speed / plain_speed:.2f}x, accuracy {fast_top1 - plain_top1:+.2f} pp"
        )


if __name__ == "__main__":
    main()
