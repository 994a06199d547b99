"""Per-epoch metrics of a run: ``metrics.csv``, TensorBoard events, ``curves.png``.

The CSV is the record (one row per epoch, top-k as accuracy in percent); TensorBoard is
written too when it is installed; the curves follow the ResNet paper's figures: training
dashed, test solid, error in percent against epochs, with the loss beside it.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import torch

COLUMNS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_top1",
    "train_top5",
    "test_loss",
    "test_top1",
    "test_top5",
    "images_per_s",
    "epoch_time",
]


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]) -> torch.Tensor:
    """How many rows have the target among their k highest scores, for each k (on device).

    k larger than the number of classes counts every row (top-5 of a 3-class problem is 100%).
    """
    kmax = min(max(ks), logits.shape[1])
    hits = logits.topk(kmax, dim=1).indices.eq(target.unsqueeze(1))
    cumulative = hits.cumsum(dim=1).sum(dim=0)  # [kmax]: rows with the target in the top j+1
    return torch.stack([cumulative[min(k, kmax) - 1] for k in ks])


class MetricsLog:
    """Appends one row per epoch to ``metrics.csv`` (and TensorBoard), redraws the curves."""

    def __init__(self, run_dir: str | Path, *, ema: bool = False):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.columns = COLUMNS + (["ema_test_top1"] if ema else [])
        self._tensorboard = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))

    def truncate_after(self, epoch: int) -> None:
        """Drop rows of epochs after ``epoch``: a run killed between writing a row and its
        checkpoint repeats that epoch when resumed, and must not log it twice."""
        if not self.csv_path.exists():
            return
        header, *rows = self.csv_path.read_text().splitlines(keepends=True)
        kept = [row for row in rows if float(row.split(",", 1)[0]) <= epoch]
        if len(kept) != len(rows):
            self.csv_path.write_text("".join([header, *kept]))

    def append(self, row: dict[str, float]) -> None:
        self._write([row], mode="a")
        if self._tensorboard is not None:
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    self._tensorboard.add_scalar(key, value, int(row["epoch"]))
            self._tensorboard.flush()
        from cnnlab.viz.curves import plot_runs

        plot_runs([self.run_dir], self.run_dir / "curves.png")

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()

    def _write(self, rows: list[dict], mode: str) -> None:
        new_file = mode == "w" or not self.csv_path.exists()
        with open(self.csv_path, mode, newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerows(rows)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as floats (empty list when there is no file yet)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]
