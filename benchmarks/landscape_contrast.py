"""Li et al. 2018's contrast: a ResNet's loss surface is smooth, that of its plain twin chaotic.

Trains ``resnetD`` and ``plainD`` (the same CIFAR network without shortcuts, He et al. 2016)
with the same recipe on (a subset of) the shared CIFAR-10, then draws both landscapes along
filter-normalised random directions with ``cnnlab landscape``'s code and prints the two numbers
that summarise each contour: the share of grid points where the surface curves down in some
direction (non-convex) and the mean |Laplacian| of the log loss (roughness). Example (about
15 minutes on 2 CPU cores)::

    python benchmarks/landscape_contrast.py --depth 56 --epochs 4 --train-subset 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cifar_data import add_data_arguments, prepare_data
from rich.console import Console

from cnnlab.training import train
from cnnlab.viz.landscape import save_landscape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--depth", type=int, default=56, choices=(20, 32, 44, 56, 110))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--lr", type=float, default=0.02, help="0.1 stalls a fresh 56-layer net on a small subset"
    )
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--span", type=float, default=1.0, help="grid covers [-SPAN, SPAN]")
    parser.add_argument("--batches", type=int, default=2, help="training batches of 128 scored")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "cnnlab_landscapes"))
    args = parser.parse_args()

    data_root = prepare_data(args)
    out = Path(args.out)
    console = Console()
    results = {}
    for name in (f"resnet{args.depth}", f"plain{args.depth}"):
        start = time.perf_counter()
        run = train(
            model=name,
            recipe="resnet2016_cifar",
            data="cifar10",
            data_dir=str(data_root),
            epochs=args.epochs,
            lr=args.lr,
            schedule="cosine",
            out=str(out / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"),
            console=console,
        )
        trained = time.perf_counter() - start
        picture, landscape = save_landscape(
            run.run_dir / "checkpoint.pt",
            "cifar10",
            grid=args.grid,
            span=args.span,
            batches=args.batches,
            batch_size=128,
            data_dir=str(data_root),
            out=out / f"landscape-{name}.png",
        )
        results[name] = (run.final, landscape, picture, trained, time.perf_counter() - start)

    print()
    header = ("model", "test top-1", "centre loss", "non-convex", "roughness")
    print("{:10} {:>10} {:>11} {:>10} {:>9}".format(*header))
    for name, (final, landscape, picture, trained, total) in results.items():
        centre = landscape.losses[args.grid // 2, args.grid // 2]
        print(
            f"{name:10} {final['test_top1']:9.2f}% {centre:11.4f} "
            f"{100 * landscape.nonconvex_fraction:9.1f}% {landscape.roughness:9.3f}"
            f"   ({trained:.0f} s training, {total - trained:.0f} s landscape) -> {picture}"
        )
    residual, plain = (results[f"{kind}{args.depth}"][1] for kind in ("resnet", "plain"))
    print(
        f"plain / residual: non-convex points {plain.nonconvex_fraction:.3f} vs "
        f"{residual.nonconvex_fraction:.3f}, roughness ratio "
        f"{plain.roughness / max(residual.roughness, 1e-12):.2f}x"
    )


if __name__ == "__main__":
    main()
