"""Helpers for the training tests that need ``cnnlab`` as a process of its own (a signal, a
second process, torchrun), on one CPU thread (fast and reproducible on a shared 2-core
machine). Other tests run the command in-process with the ``cnnlab`` fixture."""

from __future__ import annotations

import os
import sys


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def cnnlab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab.cli", *args]
