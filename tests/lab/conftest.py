"""A tiny checkpoint, and a lab on it, shared by the lab's tests.

The README's screenshots are the browser test's, on a real run:
``CNNLAB_LAB_CHECKPOINT=runs/lenet5/checkpoint.pt CNNLAB_LAB_GRID=15
CNNLAB_LAB_SCREENSHOTS=docs/images pytest -n0 tests/lab/test_browser.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cnnlab.checkpoint import save_checkpoint
from cnnlab.lab import Lab
from cnnlab.models import create_model

MODEL = "lenet5_modern"


def write_checkpoint(path: Path, seed: int = 0) -> Path:
    """A cnnlab checkpoint of LeNet-5 (modern) on the bundled digits, weights drawn by ``seed``."""
    torch.manual_seed(seed)
    model = create_model(MODEL)
    state = {
        "model": model.state_dict(),
        "model_name": MODEL,
        "model_kwargs": {},
        "config": {"model": MODEL, "data": "digits"},
        "epoch": 1,
        "step": 10,
    }
    return save_checkpoint(state, path)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """The tiny checkpoint, or ``$CNNLAB_LAB_CHECKPOINT`` (a real run, for the README's shots)."""
    given = os.environ.get("CNNLAB_LAB_CHECKPOINT")
    return Path(given) if given else write_checkpoint(tmp_path_factory.mktemp("lab") / "lenet.pt")


@pytest.fixture(scope="session")
def lab(checkpoint) -> Lab:
    grid = int(os.environ.get("CNNLAB_LAB_GRID", "5"))  # finer for the README's shots
    return Lab(str(checkpoint), landscape_grid=grid, landscape_batches=1)
