"""Nothing lost: a resumed run ends with exactly the weights of an uninterrupted one.

Batches depend only on (seed, epoch, step) and checkpoints hold model, optimizer, scheduler,
EMA and every RNG state, so on the CPU with a fixed seed the weights must be bitwise equal
(``torch.equal``), whether the run was stopped at an epoch boundary, by Ctrl-C in the middle of
an epoch, or killed with SIGKILL at an arbitrary moment.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from train_helpers import cli_env, cnnlab_command

from cnnlab.checkpoint import load_checkpoint
from cnnlab.training import TrainingInterrupted, resume, train

# LeNet-5 on the digits, 22 steps of 64 per epoch; a rate step after epoch 2 and an EMA so the
# scheduler's and the EMA's states must survive too.
OPTIONS = {
    "model": "lenet5",
    "data": "digits",
    "batch_size": 64,
    "lr": 0.01,
    "schedule": "multistep",
    "milestones": [2],
    "gamma": 0.5,
    "ema": 0.9,
    "seed": 3,
}
CLI_FLAGS = [
    "train",
    "lenet5",
    "--data", "digits",
    "--batch-size", "64",
    "--lr", "0.01",
    "--schedule", "multistep",
    "--milestones", "2",
    "--gamma", "0.5",
    "--ema", "0.9",
    "--seed", "3",
]  # fmt: skip
EPOCHS = 3


def assert_same_weights(run_dir: Path, reference: dict) -> None:
    state = load_checkpoint(run_dir)
    assert state["epoch"] == EPOCHS and state["step_in_epoch"] == 0
    for key in ("model", "ema"):
        assert state[key].keys() == reference[key].keys()
        for name, tensor in reference[key].items():
            assert torch.equal(state[key][name], tensor), f"{key}.{name} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The checkpoint of an uninterrupted 4-epoch run (one thread, as the subprocesses)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("reference") / "run"
        train(**OPTIONS, epochs=EPOCHS, out=str(run_dir))
    finally:
        torch.set_num_threads(before)
    return load_checkpoint(run_dir)


def test_train_then_resume_equals_uninterrupted(uninterrupted, tmp_path, one_thread):
    run_dir = tmp_path / "run"
    first = train(**OPTIONS, epochs=2, out=str(run_dir))
    assert [row["epoch"] for row in first.metrics] == [1, 2]
    result = resume(run_dir, epochs=EPOCHS)
    assert [row["epoch"] for row in result.metrics] == [1, 2, 3]
    assert_same_weights(run_dir, uninterrupted)


def test_ctrl_c_mid_epoch_saves_and_resumes_identically(uninterrupted, tmp_path, cnnlab):
    run_dir = tmp_path / "run"
    command = cnnlab_command(*CLI_FLAGS, "--epochs", str(EPOCHS), "--out", str(run_dir))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    wait_for(run_dir / "checkpoint.pt", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"resume with `cnnlab resume {run_dir}`" in stderr
    state = load_checkpoint(run_dir)
    assert state["epoch"] < EPOCHS
    assert state["step"] == state["epoch"] * 22 + state["step_in_epoch"]

    resumed = cnnlab("resume", run_dir)  # in this process: only the interruption needs its own
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run_dir, uninterrupted)


def test_sigkill_then_resume_equals_uninterrupted(uninterrupted, tmp_path, cnnlab):
    run_dir = tmp_path / "run"
    command = cnnlab_command(*CLI_FLAGS, "--epochs", str(EPOCHS), "--out", str(run_dir))
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env()
    )
    wait_for(run_dir / "checkpoint.pt", process)
    time.sleep(0.3)  # somewhere in the next epoch, possibly while a checkpoint is written
    process.kill()
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir)["epoch"] >= 1  # the last complete checkpoint loads

    resumed = cnnlab("resume", run_dir)  # in this process: only the interruption needs its own
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(run_dir, uninterrupted)
    epochs = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()]
    assert epochs == ["epoch", "1", "2", "3"]  # no epoch logged twice


def test_interrupt_in_process_raises_training_interrupted(tmp_path, one_thread, monkeypatch):
    """The library API reports the stop as an exception carrying the resume hint."""
    from cnnlab.training import engine

    original = engine.Trainer._train_step

    def step_then_request_stop(self, images, labels, sums):
        original(self, images, labels, sums)
        self._stop_requested = True

    monkeypatch.setattr(engine.Trainer, "_train_step", step_then_request_stop)
    with pytest.raises(TrainingInterrupted, match="resume with `cnnlab resume"):
        train(**OPTIONS, epochs=1, out=str(tmp_path / "run"))
    state = load_checkpoint(tmp_path / "run")
    assert (state["epoch"], state["step_in_epoch"], state["step"]) == (0, 1, 1)
    assert state["partial"]["sums"][3] == 64  # the images of the one step taken


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)
