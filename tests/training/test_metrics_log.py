"""metrics.csv across cnnlab versions: an older file gains the new columns when its run resumes."""

from __future__ import annotations

import csv

from cnnlab.run_metrics import COLUMNS, TEXT_COLUMNS, read_metrics
from cnnlab.training.metrics import MetricsLog

OLD_COLUMNS = [c for c in COLUMNS if c != "skipped_steps"]  # before steps and machines were kept


def _row(epoch: int) -> dict:
    return {column: float(epoch) for column in OLD_COLUMNS}


def test_an_older_metrics_file_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=OLD_COLUMNS)
        writer.writeheader()
        writer.writerows([_row(1), _row(2), _row(3)])
    log = MetricsLog(tmp_path)
    log.truncate_after(2)  # the run resumes after epoch 2: epoch 3's row goes
    log.append({**_row(3), "skipped_steps": 0, "eval_precision": "fp32", "machine": "cpu; 1 x"})
    log.close()
    header = path.read_text().splitlines()[0].split(",")
    assert set(header) == {*COLUMNS, *TEXT_COLUMNS}
    rows = read_metrics(path)
    assert [row["epoch"] for row in rows] == [1.0, 2.0, 3.0]
    assert "machine" not in rows[0] and rows[2]["machine"] == "cpu; 1 x"
    assert rows[2]["eval_precision"] == "fp32" and rows[1]["test_top1"] == 2.0
