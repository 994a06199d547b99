"""Fixtures of the command-line tests: a scratch folder per test module, a one-epoch LeNet-5
run on the digits in it, and a digit image."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import TINY, write_digit_png


@pytest.fixture(scope="module")
def place(tmp_path_factory, request) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def run(place, cnnlab) -> Path:
    """A one-epoch LeNet-5 run on the digits (10 classes)."""
    result = cnnlab("train", "lenet5", *TINY, "--out", place / "run")
    assert result.returncode == 0, result.stderr
    return place / "run"


@pytest.fixture(scope="module")
def digit_png(place) -> Path:
    return write_digit_png(place / "one.png")
