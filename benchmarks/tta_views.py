"""Wider test-time augmentation than ``flipshift``: does it buy accuracy on trained runs?

``flipshift`` (Jordan 2024's level 2) averages six views: the image and two 1-pixel diagonal
translations, each with its mirror. This computes the softmax of every run's model on the
image and its mirror under each translation of up to 2 pixels once, then scores several view
sets built from them, from none to all nine 1-pixel translations, so each set is compared on
the same trained weights. It then scores ``flipshift-adaptive`` (the shifted views only where
the mirror pair's two likeliest classes are closer than a margin) at several margins, against
``flipshift`` on the same outputs:

    python benchmarks/tta_views.py RUN_DIR [RUN_DIR ...] --data-dir DIR
    python benchmarks/tta_views.py speedrun_cifar_net --weights cifar10 --data-dir DIR
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from cnnlab.data import load_dataset, make_loader
from cnnlab.machine import bf16_supported, machine_summary
from cnnlab.model_source import load_source

CENTRE = (0, 0)
DIAGONAL = [(-1, -1), (1, 1)]
CORNERS = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
CROSS = [(0, 1), (0, -1), (1, 0), (-1, 0)]
GRID = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
# view set: [(translation, weight)], each translation with its mirror at half the weight
VIEW_SETS = {
    "none": None,
    "flip": [(CENTRE, 1.0)],
    "flipshift (6 views)": [(CENTRE, 0.5)] + [(s, 0.25) for s in DIAGONAL],
    "flip + 4 diagonal (10)": [(CENTRE, 0.5)] + [(s, 0.125) for s in CORNERS],
    "flip + 4 cross (10)": [(CENTRE, 0.5)] + [(s, 0.125) for s in CROSS],
    "flip + 1, 2 px diagonal (10)": [(CENTRE, 0.5)]
    + [(s, 0.125) for s in (*DIAGONAL, (-2, -2), (2, 2))],
    "flip + 3x3 grid, equal (18)": [(s, 1 / 9) for s in GRID],
}
SHIFTS = sorted({s for views in VIEW_SETS.values() if views for s, _ in views})
MARGINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def view_probabilities(model, loader, amp: bool) -> tuple[dict, torch.Tensor]:
    """Softmax of ``model`` on every translation in SHIFTS and its mirror: ``{(shift, mirrored):
    [N, classes]}``, and the labels."""
    outputs: dict = {(s, m): [] for s in SHIFTS for m in (False, True)}
    labels = []
    for images, target in loader.epoch(0):
        height, width = images.shape[-2:]
        padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
        for dy, dx in SHIFTS:
            view = padded[..., 2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width]
            for mirrored in (False, True):
                seen = TF.horizontal_flip(view) if mirrored else view
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    logits = model(seen.contiguous(memory_format=torch.channels_last))
                outputs[(dy, dx), mirrored].append(F.softmax(logits.float(), dim=1))
        labels.append(target)
    return {k: torch.cat(v) for k, v in outputs.items()}, torch.cat(labels)


def combine(probabilities: dict, views) -> torch.Tensor:
    """The view set's weighted mean of the softmax outputs (``None``: the plain image's)."""
    if views is None:
        return probabilities[CENTRE, False]
    return sum(w / 2 * (probabilities[s, False] + probabilities[s, True]) for s, w in views)


def top1(probabilities: dict, labels: torch.Tensor, views) -> float:
    scores = combine(probabilities, views)
    return 100 * (scores.argmax(1) == labels).float().mean().item()


def adaptive(probabilities: dict, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``flipshift-adaptive``'s scores at ``margin`` from the per-view outputs, and which
    images it gives the shifted views (cnnlab's own mode computes only those views)."""
    pair = combine(probabilities, VIEW_SETS["flip"])
    leaders = pair.topk(2, dim=1).values
    unsure = leaders[:, 0] - leaders[:, 1] < margin
    six = combine(probabilities, VIEW_SETS["flipshift (6 views)"])
    return torch.where(unsure[:, None], six, pair), unsure


def print_margins(probabilities: dict, labels: torch.Tensor) -> None:
    answers = combine(probabilities, VIEW_SETS["flipshift (6 views)"]).argmax(1)
    for margin in MARGINS:
        scores, unsure = adaptive(probabilities, margin)
        share = unsure.float().mean().item()
        accuracy = 100 * (scores.argmax(1) == labels).float().mean().item()
        changed = int((scores.argmax(1) != answers).sum())
        print(
            f"  margin {margin:.1f}: shifted views for {100 * share:4.1f}% of the images "
            f"({2 + 4 * share:.2f} views an image), top-1 {accuracy:.2f}, "
            f"{changed} answers unlike flipshift's"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="or a model name (--weights)")
    parser.add_argument("--weights", help="shipped weights of a model named instead of a run")
    parser.add_argument("--data-dir", help="where the runs' dataset lives")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    print(f"machine: {machine_summary(cpu)}")
    table: dict[str, list[float]] = {name: [] for name in VIEW_SETS}
    for run in args.runs:
        source = load_source(run, weights=args.weights)
        model = source.model.eval().to(memory_format=torch.channels_last)
        dataset = load_dataset(source.data, data_dir=args.data_dir or source.data_dir)
        loader = make_loader("test", dataset, batch_size=500, train=False, channels_last=True)
        amp = bool((source.run_config or {}).get("amp")) and bf16_supported(cpu)
        began = time.perf_counter()
        with torch.no_grad():
            probabilities, labels = view_probabilities(model, loader, amp)
        print(f"{run}: {len(SHIFTS) * 2} views in {time.perf_counter() - began:.0f} s")
        print_margins(probabilities, labels)
        for name, views in VIEW_SETS.items():
            table[name].append(top1(probabilities, labels, views))
    print(f"{'view set':30} " + " ".join(f"{'run ' + str(i):>7}" for i in range(len(args.runs))))
    for name, accuracies in table.items():
        cells = " ".join(f"{a:7.2f}" for a in accuracies)
        print(f"{name:30} {cells}   mean {statistics.mean(accuracies):.2f}")


if __name__ == "__main__":
    main()
