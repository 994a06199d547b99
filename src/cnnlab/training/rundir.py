"""One owner per run directory: an OS file lock held while a process trains into it.

Two processes writing one run directory interleave ``metrics.csv`` rows and replace each
other's checkpoints, so ``cnnlab train --out DIR`` and ``cnnlab resume DIR`` take an exclusive
``fcntl.flock`` on ``DIR/.cnnlab.lock`` first. The kernel drops the lock when the process ends,
however it ends (SIGKILL included), so a crashed run never leaves a stale lock behind; the file
itself stays, empty of meaning, and is reused by the next owner. The holder's process id is
written into it only to make the refusal message useful.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from cnnlab.errors import CheckpointError, RunInUseError

LOCK_NAME = ".cnnlab.lock"


class RunDirLock:
    """An exclusive lock on a run directory; ``release()`` (or process exit) frees it."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunDirLock:
        """Take the lock without waiting, creating the directory if needed.

        Raises:
            RunInUseError: another process (or another lock in this one) holds it.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            by = f" (process {holder})" if holder.isdigit() else ""
            raise RunInUseError(
                f"run directory {self.run_dir} is in use by another cnnlab process{by}; wait "
                "for it to finish or stop it, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# What must agree between a run directory and the checkpoint resumed in it.
RUN_IDENTITY = ("model", "data", "data_dir", "model_kwargs", "input_size")


def check_checkpoint_belongs(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Refuse to resume ``state`` in ``run_dir`` when they describe different runs.

    A checkpoint copied from another run (another model, dataset or class count) would train
    that run's model in this directory, replace its ``config.yaml`` and drop its metrics rows;
    this compares the checkpoint with itself (the model it holds against the config it
    carries) and with the directory's ``config.yaml``, and names what differs.

    Raises:
        CheckpointError: they differ; nothing has been written.
    """
    import yaml

    run_dir = Path(run_dir)
    config = state.get("config") or {}
    differences = []
    if state.get("model_name") != config.get("model"):
        differences.append(
            f"the weights are a {state.get('model_name')} but its config says {config.get('model')}"
        )
    saved_kwargs = config.get("model_kwargs") or {}
    for key, value in saved_kwargs.items():
        if state.get("model_kwargs", {}).get(key) != value:
            differences.append(f"model argument {key}")
    config_path = run_dir / "config.yaml"
    if config_path.is_file():
        try:
            recorded = yaml.safe_load(config_path.read_text())
        except yaml.YAMLError:
            recorded = None
        if isinstance(recorded, dict):
            for key in RUN_IDENTITY:
                if key in recorded and recorded[key] != config.get(key):
                    differences.append(
                        f"{key}: {recorded[key]!r} in config.yaml, {config.get(key)!r} in the "
                        "checkpoint"
                    )
    if differences:
        raise CheckpointError(
            f"the checkpoint in {run_dir} does not belong to this run ({'; '.join(differences)}); "
            "nothing was changed: resume the run the checkpoint came from, or start a new run"
        )
