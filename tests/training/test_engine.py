"""The engine's run directory, metrics, EMA, auxiliary losses and non-finite handling."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.checkpoint import load_checkpoint
from cnnlab.errors import TrainingDivergedError
from cnnlab.evaluation import topk_correct
from cnnlab.run_metrics import COLUMNS, TEXT_COLUMNS, read_metrics
from cnnlab.runs import train  # the public cnnlab.train: the engine plus its curves
from cnnlab.training.engine import training_loss

FAST = {"model": "lenet5", "data": "digits", "batch_size": 128, "lr": 0.01, "log_every": 5}
# LeNet-5's scaled tanh and RBF outputs bound its loss; the ReLU version can blow up
DIVERGING = {**FAST, "model": "lenet5_modern"}


def test_run_directory_metrics_and_ema(tmp_path, one_thread):
    run_dir = tmp_path / "run"
    result = train(**FAST, epochs=2, ema=0.9, out=str(run_dir))
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.yaml", "metrics.csv", "checkpoint.pt", "best.pt", "curves.png",
    }  # fmt: skip
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == [*COLUMNS, "ema_test_top1", *TEXT_COLUMNS]
    rows = read_metrics(run_dir / "metrics.csv")
    assert [row["step"] for row in rows] == [11, 22]  # 1,437 digits // 128 per epoch
    for row in rows:
        assert 0 <= row["test_top1"] <= row["test_top5"] <= 100
        assert row["images_per_s"] > 0 and row["lr"] == 0.01
    state = load_checkpoint(run_dir)
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    assert ema.keys() == state["model"].keys()
    assert any(not torch.equal(ema[k], state["model"][k]) for k in ema)
    assert result.final == rows[-1]


def test_top_k_counts_match_a_direct_count():
    logits = torch.tensor([[0.1, 0.5, 0.2], [0.9, 0.0, 0.3], [0.2, 0.3, 0.1]])
    target = torch.tensor([2, 0, 0])
    # row 0: target ranked 2nd; row 1: 1st; row 2: 2nd. k=5 exceeds 3 classes: every row
    assert topk_correct(logits, target, (1, 2, 5)).tolist() == [1, 3, 3]


def test_auxiliary_losses_are_weighted():
    scores, labels = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    output = (scores, 2 * scores, 3 * scores)
    loss, logits = training_loss(output, labels, torch.nn.CrossEntropyLoss(), aux_weight=0.3)
    ce = torch.nn.functional.cross_entropy
    expected = ce(scores, labels) + 0.3 * (ce(2 * scores, labels) + ce(3 * scores, labels))
    torch.testing.assert_close(loss, expected)
    assert logits is scores


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, one_thread):
    run_dir = tmp_path / "run"
    # epoch 1 at lr 0.01, then the step schedule multiplies the rate by 1e8
    with pytest.raises(TrainingDivergedError) as caught:
        train(**DIVERGING, epochs=3, schedule="step", step_size=1, gamma=1e8, out=str(run_dir))
    message = str(caught.value)
    assert "epoch 2" in message and "--clip" in message and "--lr" in message
    assert f"last good checkpoint {run_dir / 'checkpoint.pt'} is kept" in message
    state = load_checkpoint(run_dir)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_nonfinite_steps_can_be_skipped(tmp_path, one_thread):
    options = {**DIVERGING, "lr": 1e8}
    result = train(**options, epochs=1, on_nonfinite="skip", out=str(tmp_path / "r"))
    assert len(result.metrics) == 1
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert math.isfinite(result.final["train_loss"])
