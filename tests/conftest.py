"""Suite-wide settings and the one way tests run the ``cnnlab`` command.

The tests run many tiny forward/backward passes, for which one intra-op thread is faster than
several: the thread start-up costs more than the arithmetic, and on a busy machine extra threads
oversubscribe the cores.

``cnnlab`` (the fixture) runs the command in this process through ``cnnlab.cli.main``: a new
Python process would spend seconds importing torch for every call. Tests where the process
itself is the point (a signal, torchrun, the installed entry point) start one explicitly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import torch

torch.set_num_threads(1)


@dataclass(frozen=True)
class CliResult:
    """What a finished ``cnnlab`` command left: exit status and the text of both streams."""

    returncode: int
    stdout: str
    stderr: str


def run_cnnlab(
    *args: object, cwd: str | Path | None = None, env: dict[str, str] | None = None
) -> CliResult:
    """``cnnlab ARGS`` in this process, as a user's shell would run it, 200 columns wide.

    Output goes to the strings returned (rich consoles included); ``env`` replaces variables of
    the environment while the command runs. An exception that ``main`` lets escape is not
    caught: it fails the test with its traceback, as it would have reached the user.
    """
    from rich.console import Console

    from cnnlab import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env or {}))
        stack.enter_context(mock.patch.object(cli, "console", Console(file=stdout, width=200)))
        stack.enter_context(mock.patch.object(cli, "err_console", Console(file=stderr, width=200)))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        try:
            returncode = cli.main([str(arg) for arg in args])
        except SystemExit as exit:  # argparse (usage, --help) and Ctrl-C's status 130
            returncode = _exit_status(exit, stderr)
    return CliResult(returncode, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="session", autouse=True)
def own_cnnlab_directories(tmp_path_factory) -> Iterator[None]:
    """This test process's own models-table cache and default data directory.

    pytest-xdist runs several test processes at once; none of them then reads a cache another is
    writing, and the user's ``~/.cache/cnnlab`` is left alone. Subprocesses inherit them.
    """
    home = tmp_path_factory.mktemp("cnnlab-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_CACHE", str(home / "cache"))
        patch.setenv("CNNLAB_DATA", str(home / "data"))
        yield


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for the test, and the suite's setting back after it (a test that
    changes torch's threads, or runs code that does, must not leave them to the next)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cnnlab() -> Callable[..., CliResult]:
    """The ``cnnlab`` command run in-process: ``cnnlab("train", "lenet5", cwd=tmp_path)``."""
    return run_cnnlab


def _import_benchmark(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if str(path.parent) not in sys.path:  # the scripts import their neighbours by name
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable:
    """Imports a script of ``benchmarks/`` as a module: ``load_benchmark("tta_views")``."""
    return _import_benchmark


def _exit_status(exit: SystemExit, stderr: io.StringIO) -> int:
    """The status Python's interpreter gives a ``SystemExit`` (a message: printed, status 1)."""
    if exit.code is None or isinstance(exit.code, int):
        return exit.code or 0
    print(exit.code, file=stderr)
    return 1
