"""The engine draws nothing itself: its epoch-end hook is how the layers above add pictures."""

from __future__ import annotations

from cnnlab.run_metrics import read_metrics
from cnnlab.training import train

FAST = {"model": "lenet5", "data": "digits", "batch_size": 128, "lr": 0.01, "log_every": 5}


def test_the_hook_sees_each_written_row_and_the_engine_draws_no_curves(tmp_path, one_thread):
    seen = []

    def record(run_dir, row):
        seen.append((run_dir, dict(row), len(read_metrics(run_dir / "metrics.csv"))))

    result = train(**FAST, epochs=2, out=str(tmp_path / "run"), on_epoch_end=record)
    assert [(run_dir, n) for run_dir, _, n in seen] == [(result.run_dir, 1), (result.run_dir, 2)]
    assert [row["epoch"] for _, row, _ in seen] == [1, 2]
    assert [row["test_top1"] for _, row, _ in seen] == [r["test_top1"] for r in result.metrics]
    assert not (result.run_dir / "curves.png").exists()
