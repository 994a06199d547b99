"""One owner per run directory, and a checkpoint resumed only in the run it belongs to.

The lock is tested as users meet it: with two real ``cnnlab`` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from train_helpers import cli_env, cnnlab_command

from cnnlab.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.errors import CheckpointError, RunInUseError
from cnnlab.run_metrics import read_metrics
from cnnlab.training import resume, train
from cnnlab.training.rundir import LOCK_NAME, RunDirLock

TRAIN = ["train", "lenet5", "--data", "digits", "--batch-size", "128", "--seed", "1"]


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_live_run_locks_out_a_second_process_and_sigkill_frees_it(tmp_path, cnnlab):
    run_dir = tmp_path / "run"
    owner = subprocess.Popen(
        cnnlab_command(*TRAIN, "--epochs", "200", "--out", str(run_dir)),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(run_dir / "checkpoint.pt", owner)
        # the second process is this one: the command runs in-process
        line = _one_line_error(cnnlab("resume", str(run_dir), "--epochs", "300"))
        assert "in use" in line and f"process {owner.pid}" in line
        rows_before = (run_dir / "metrics.csv").read_text()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert rows_before  # the refused resume wrote nothing into the live run
    state = load_checkpoint(run_dir)
    # the kernel dropped the dead owner's lock: resuming works at once, no stale lock file
    result = cnnlab("resume", str(run_dir), "--epochs", str(state["epoch"] + 1))
    assert result.returncode == 0, result.stderr
    epochs = [int(row["epoch"]) for row in read_metrics(run_dir / "metrics.csv")]
    assert epochs == list(range(1, state["epoch"] + 2))


def test_two_trainings_started_together_on_one_out_leave_one_run(tmp_path):
    run_dir = tmp_path / "run"
    command = cnnlab_command(*TRAIN, "--epochs", "2", "--out", str(run_dir))
    processes = [
        subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [process.communicate(timeout=300) + (process.returncode,) for process in processes]
    assert sorted(code for *_, code in results) == [0, 2]
    loser = next(stderr.decode() for _, stderr, code in results if code == 2)
    assert len(loser.strip().splitlines()) == 1 and "Traceback" not in loser
    assert "in use" in loser or "already holds a run" in loser
    assert [int(row["epoch"]) for row in read_metrics(run_dir / "metrics.csv")] == [1, 2]


def test_lock_is_exclusive_and_released(tmp_path):
    first = RunDirLock(tmp_path / "run").acquire()
    assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(os.getpid())
    with pytest.raises(RunInUseError, match="in use"):
        RunDirLock(tmp_path / "run").acquire()
    first.release()
    with RunDirLock(tmp_path / "run") as again:
        assert again.held


def test_resume_refuses_a_checkpoint_of_another_run_and_touches_nothing(tmp_path, one_thread):
    lenet = tmp_path / "lenet"
    train(model="lenet5", data="digits", epochs=1, batch_size=128, out=str(lenet))
    other = tmp_path / "other"
    train(model="lenet5_modern", data="digits", epochs=1, batch_size=128, out=str(other))
    save_checkpoint(load_checkpoint(other), lenet / "checkpoint.pt")  # a foreign checkpoint
    before = {p.name: p.read_bytes() for p in lenet.iterdir() if p.is_file()}
    with pytest.raises(CheckpointError) as error:
        resume(lenet, epochs=2)
    message = str(error.value)
    assert "lenet5_modern" in message and "'lenet5'" in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in lenet.iterdir() if p.is_file()} == before
    assert yaml.safe_load((lenet / "config.yaml").read_text())["model"] == "lenet5"
