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

import torch
from train_helpers import cli_env

from cnnlab.models import create_model
from cnnlab.run_metrics import read_metrics
from cnnlab.training import train

WORKER = __file__.replace("test_distributed.py", "ddp_worker.py")


def test_two_gloo_processes_match_one_process(tmp_path, one_thread):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        WORKER, str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"ranks disagree on {name}"

    # only rank 0 wrote the run directory; its metrics cover all 1,437 - 1,437 % 128 images
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
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
