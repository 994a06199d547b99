"""Run directories written by hand, in the format ``cnnlab train`` writes them.

Each history follows a closed-form curve with the shape the lectures describe for its case, so a
test knows what the diagnosis must say without training anything.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

EPOCHS = 12


def _row(epoch: int, train_loss, test_loss, train_top1, test_top1, lr=0.1) -> dict[str, float]:
    return {
        "epoch": epoch,
        "step": 10 * epoch,
        "lr": lr,
        "train_loss": train_loss,
        "train_top1": train_top1,
        "train_top5": min(100.0, train_top1 + 20),
        "test_loss": test_loss,
        "test_top1": test_top1,
        "test_top5": min(100.0, test_top1 + 20),
        "images_per_s": 1000.0,
        "epoch_time": 1.5,
    }


def history(kind: str, epochs: int = EPOCHS) -> list[dict[str, float]]:
    """Per-epoch rows of one kind: healthy, still_improving, overfitting, plateau, stalled,
    oscillating, diverging, exploding (NaN) or step_lr (healthy with lr steps at 5 and 9)."""
    rows = []
    for e in range(1, epochs + 1):
        if kind in ("healthy", "step_lr"):
            decay = math.exp(-0.8 * e)
            lr = 0.1 if kind == "healthy" else 0.1 * 0.1 ** ((e > 5) + (e > 9))
            row = _row(
                e, 0.1 + 2.2 * decay, 0.15 + 2.1 * decay, 95 - 85 * decay, 93 - 83 * decay, lr
            )
        elif kind == "still_improving":
            loss = 2.3 * math.exp(-0.15 * e)
            row = _row(e, loss, 1.1 * loss + 0.05, 20 + 5 * e, 18 + 5 * e)
        elif kind == "overfitting":
            train = 2.3 * math.exp(-0.5 * e)
            test = 0.6 + 1.7 * math.exp(-0.6 * e) + 0.08 * max(0, e - 4) ** 1.3
            test_top1 = 85 - 70 * math.exp(-0.6 * e) - 0.4 * max(0, e - 5)
            row = _row(e, train, test, 100 - 90 * math.exp(-0.5 * e), test_top1)
        elif kind == "plateau":
            row = _row(e, 2.303 - 0.002 * e, 2.304 - 0.002 * e, 10 + 0.1 * e, 10 + 0.1 * e, 1e-5)
        elif kind == "stalled":  # 6% lower, then flat as a cosine schedule reaches 0
            lr = 0.02 * (1 + math.cos(math.pi * e / epochs)) / 2
            train = 2.05 + 0.25 * math.exp(-0.6 * e)
            row = _row(e, train, train - 0.03, 22 - 9 * math.exp(-0.6 * e), 22.0, lr)
        elif kind == "oscillating":
            train = 0.4 + 1.9 * math.exp(-0.3 * e) + 0.25 * (-1) ** e
            row = _row(e, train, train + 0.1, 90 - 60 * train / 2.3, 88 - 60 * train / 2.3, 0.5)
        elif kind == "diverging":
            train = [2.3, 1.9, 1.7, 1.8, 2.6, 5.0, 12.0, 40.0, 90.0, 200.0, 400.0, 900.0][e - 1]
            row = _row(e, train, train * 1.1, 60 - 4 * e, 58 - 4 * e, 3.0)
        elif kind == "exploding":
            train = [2.3, 1.9, 1.7, 3.0, 1e4, math.nan][min(e, 6) - 1]
            row = _row(e, train, train, 30.0, 30.0, 3.0)
        else:
            raise ValueError(kind)
        rows.append(row)
    return rows


COLUMNS = list(_row(1, 0, 0, 0, 0))


def write_metrics(run_dir: Path, rows: list[dict[str, float]]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "metrics.csv"
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_run(
    run_dir: Path,
    kind: str = "healthy",
    *,
    model: str = "lenet5_modern",
    seed: int = 0,
    epochs: int = EPOCHS,
) -> Path:
    """A complete run directory: metrics.csv, config.yaml, checkpoint.pt and best.pt."""
    from cnnlab.checkpoint import save_checkpoint
    from cnnlab.models import create_model
    from cnnlab.training.config import resolve_config

    rows = history(kind, epochs)
    write_metrics(run_dir, rows)
    config = resolve_config(model, None, data="digits", epochs=epochs, out=str(run_dir))
    config.save_yaml(run_dir / "config.yaml")
    kwargs = {"num_classes": 10, "in_chans": 1}
    torch.manual_seed(seed)
    network = create_model(model, **kwargs)
    state = {
        "model": network.state_dict(),
        "model_name": model,
        "model_kwargs": kwargs,
        "config": config.to_dict(),
        "epoch": epochs,
        "step": int(rows[-1]["step"]),
    }
    save_checkpoint(state, run_dir / "checkpoint.pt")
    save_checkpoint(state, run_dir / "best.pt")
    return run_dir
