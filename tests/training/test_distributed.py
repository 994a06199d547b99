"""torchrun + DistributedDataParallel on the CPU (gloo): two processes stay in sync and agree
with one process trained on the same global batch, even when each process takes its share in
micro-batches (gradients kept local until the last piece's backward averages them).

Why allclose and not equal: with two processes each rank computes the mean gradient of its
half batch and DDP averages the two, where one process takes the mean over the whole batch in
one reduction; float32 sums in a different order differ in the last bits, and a few steps carry
that into the weights (~1e-7 relative). bf16 autocast is switched off here, as its rounding
would magnify the same effect.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from train_helpers import cli_env

from cnnlab.models import create_model
from cnnlab.run_metrics import read_metrics
from cnnlab.training import train

WORKER = __file__.replace("test_distributed.py", "ddp_worker.py")


def two_processes(out, mode: str) -> tuple[dict, ...]:
    """``ddp_worker.py`` under torchrun with two processes; each rank's final weights."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        WORKER, str(out), mode,
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    saved = [out / f"{mode}-rank{rank}.pt" for rank in (0, 1)]
    return tuple(torch.load(path, weights_only=True) for path in saved if path.exists())


def test_two_gloo_processes_match_one_process(tmp_path, one_thread):
    rank0, rank1 = two_processes(tmp_path, "whole")
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"ranks disagree on {name}"

    # only rank 0 wrote the run directory; its metrics cover all 1,437 - 1,437 % 128 images
    rows = read_metrics(tmp_path / "whole" / "metrics.csv")
    assert len(rows) == 1 and rows[0]["step"] == 11
    assert 0 <= rows[0]["test_top1"] <= 100

    single = train(
        model="lenet5", data="digits", epochs=1, batch_size=128, lr=0.01, amp=False,
        out=str(tmp_path / "single"),
    )  # fmt: skip
    reference = single.model.state_dict()
    for name, tensor in reference.items():
        torch.testing.assert_close(rank0[name], tensor, rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)  # the engine's seed: the weights both runs started from
    initial = create_model("lenet5", num_classes=10, in_chans=1).state_dict()
    assert not all(torch.equal(initial[name], reference[name]) for name in reference)
    assert (
        abs(
            read_metrics(tmp_path / "single" / "metrics.csv")[0]["test_top1"] - rows[0]["test_top1"]
        )
        <= 100 / 360 + 1e-9
    )  # at most one of the 360 test digits flips


def test_a_stopped_two_process_run_resumes_to_the_same_epoch(tmp_path, one_thread):
    """Stopped after step 5 and resumed by a new torchrun: the same weights, and the epoch's
    training loss and accuracy count each image once (the sums saved mid-epoch are those of
    both processes)."""
    whole, _ = two_processes(tmp_path, "whole")
    assert two_processes(tmp_path, "stopped") == ()
    resumed, other = two_processes(tmp_path, "resumed")
    for name in whole:
        assert torch.equal(resumed[name], other[name]), f"ranks disagree on {name}"
        torch.testing.assert_close(resumed[name], whole[name], rtol=1e-5, atol=1e-6)
    [expected] = read_metrics(tmp_path / "whole" / "metrics.csv")
    [got] = read_metrics(tmp_path / "parts" / "metrics.csv")
    assert got["step"] == expected["step"] == 11
    assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)
    assert got["train_top1"] == pytest.approx(expected["train_top1"], abs=1e-9)


def test_two_processes_keep_training_after_the_whitening_bias_freezes(tmp_path, one_thread):
    """The speedrun recipe freezes the whitening bias after its epochs; DDP, which fixed its
    gradient buckets over the parameters training at the start, is rebuilt without it."""
    rank0, rank1 = two_processes(tmp_path, "speedrun")
    weights = [name for name in rank0 if "running_" not in name and "num_batches" not in name]
    assert "whiten.bias" in weights and "head.weight" in weights
    for name in weights:  # BatchNorm's statistics are each rank's own batches'
        assert torch.equal(rank0[name], rank1[name]), f"ranks disagree on {name}"
    [first, second] = read_metrics(tmp_path / "parts" / "metrics.csv")
    assert second["train_loss"] < first["train_loss"]
