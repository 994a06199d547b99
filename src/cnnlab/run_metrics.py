"""The format of a run's ``metrics.csv``: its columns, how tables print them, and its reader.

Training writes the file and the pictures and reports read it, so the format lives here,
below both, and neither has to import the other.
"""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = (
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
    "skipped_steps",
)
EMA_COLUMN = "ema_test_top1"  # written only by runs trained with an EMA of the weights
# Where and how the row was computed: the test's precision (bf16 or fp32) and the machine
# (CPU model and flags, threads, GPU, torch version), which may change when a run is resumed.
TEXT_COLUMNS = ("eval_precision", "machine")

FORMATS = {
    "epoch": "{:.0f}",
    "step": "{:.0f}",
    "lr": "{:.3g}",
    "images_per_s": "{:,.0f}",
    "epoch_time": "{:.1f}",
    "skipped_steps": "{:.0f}",
    **{name: "{:.4f}" for name in ("train_loss", "test_loss")},
    **{name: "{:.2f}" for name in ("train_top1", "train_top5", "test_top1", "test_top5")},
    EMA_COLUMN: "{:.2f}",
}


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv``: floats, but the ``TEXT_COLUMNS`` as strings (empty list
    when there is no file yet; an empty cell is left out of its row)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return [
            {k: v if k in TEXT_COLUMNS else float(v) for k, v in row.items() if v}
            for row in csv.DictReader(file)
        ]
