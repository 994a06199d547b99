"""Helpers for the training tests: the ``cnnlab`` command run as a user would run it, on one
CPU thread (fast and reproducible on a shared 2-core machine)."""

from __future__ import annotations

import os
import subprocess
import sys


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def cnnlab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab.cli", *args]


def run_cnnlab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        cnnlab_command(*args), capture_output=True, text=True, env=cli_env(), timeout=timeout
    )
