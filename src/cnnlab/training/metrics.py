"""Per-epoch metrics of a run: ``metrics.csv`` and TensorBoard events.

The CSV is the record (one row per epoch, top-k as accuracy in percent; its format is in
``cnnlab.run_metrics``); TensorBoard is written too when it is installed. The curves are drawn
by whoever runs the engine (``cnnlab train`` passes an epoch-end hook from ``cnnlab.viz``).
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from cnnlab.run_metrics import COLUMNS, EMA_COLUMN, TEXT_COLUMNS


class MetricsLog:
    """Appends one row per epoch to ``metrics.csv`` (and TensorBoard)."""

    def __init__(self, run_dir: str | Path, *, ema: bool = False):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.columns = [*COLUMNS, *([EMA_COLUMN] if ema else []), *TEXT_COLUMNS]
        self._tensorboard = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))

    def truncate_after(self, epoch: int) -> None:
        """Drop rows of epochs after ``epoch``: a run killed between writing a row and its
        checkpoint repeats that epoch when resumed, and must not log it twice."""
        if not self.csv_path.exists():
            return
        with open(self.csv_path, newline="") as file:
            reader = csv.DictReader(file)
            header, rows = reader.fieldnames or [], list(reader)
        kept = [row for row in rows if float(row["epoch"]) <= epoch]
        if len(kept) != len(rows) or header != self.columns:
            # a file from an older cnnlab gains the new columns (empty in its old rows)
            self.columns += [column for column in header if column not in self.columns]
            self._write(kept, mode="w")

    def append(self, row: dict[str, float]) -> None:
        self._write([row], mode="a")
        if self._tensorboard is not None:
            for key, value in row.items():
                if key not in ("epoch", "step", *TEXT_COLUMNS):
                    self._tensorboard.add_scalar(key, value, int(row["epoch"]))
            self._tensorboard.flush()

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
