"""A tiny trained-looking checkpoint, and a lab on it, shared by the lab's tests."""

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
    return Lab(str(checkpoint), landscape_grid=5, landscape_batches=1)
