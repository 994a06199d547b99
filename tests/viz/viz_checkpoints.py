"""Checkpoints and images written into a test's tmp_path, in the format `cnnlab train` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.checkpoint import save_checkpoint
from cnnlab.models import create_model


def write_checkpoint(
    path: Path, model_name: str = "lenet5_modern", seed: int = 0, **kwargs
) -> Path:
    """A cnnlab checkpoint of ``model_name`` with weights drawn under ``seed``."""
    torch.manual_seed(seed)
    model = create_model(model_name, **kwargs)
    state = {
        "model": model.state_dict(),
        "model_name": model_name,
        "model_kwargs": dict(kwargs),
        "config": {"model": model_name, "data": "digits"},
        "epoch": 1,
        "step": 10,
    }
    return save_checkpoint(state, path)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Save a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG."""
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))
