"""The picture commands (filters, features, convolve, saliency, landscape, gradflow) as run."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from cnnlab.checkpoint import save_checkpoint
from cnnlab.models import create_model


def checkpoint(path, seed: int):
    torch.manual_seed(seed)
    model = create_model("lenet5_modern")
    state = {
        "model": model.state_dict(),
        "model_name": "lenet5_modern",
        "model_kwargs": {},
        "config": {"model": "lenet5_modern", "data": "digits"},
        "epoch": 3,
        "step": 30,
    }
    return save_checkpoint(state, path)


def png(path, pixels) -> str:
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return str(path)


def picture(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_picture_commands_write_where_they_say(tmp_path, cnnlab):
    best = checkpoint(tmp_path / "run" / "best.pt", seed=0)
    edge = np.zeros((48, 48), np.uint8)
    edge[:, 24:] = 255
    image = png(tmp_path / "edge.png", edge)

    result = cnnlab("filters", str(best))
    assert result.returncode == 0, result.stderr
    assert "features.c1: 6 filters of 5×5×1" in result.stdout
    assert str(tmp_path / "run" / "best_filters.png") in result.stdout
    assert picture(tmp_path / "run" / "best_filters.png").std() > 10

    result = cnnlab("convolve", image, "--filter", "sobel-v", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # a 0 -> 1 step under the kernel's -1, -2, -1 column: -4 on the edge, nothing elsewhere
    assert "response 46×46, min -4.000, max 0.000" in result.stdout
    assert picture(tmp_path / "edge_sobel-v.png").shape == (480, 1400, 3)

    result = cnnlab("saliency", str(best), image, "--out", str(tmp_path / "s.png"))
    assert result.returncode == 0, result.stderr
    assert "occlusion hurts most at" in result.stdout and "s.png" in result.stdout
    assert picture(tmp_path / "s.png").shape == (440, 1900, 3)

    out = tmp_path / "f.png"
    result = cnnlab("features", str(best), image, "--layers", "features.c1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "features.c1: (6, 28, 28)" in result.stdout
    assert "digits training set" in result.stdout


def test_landscape_and_gradflow(tmp_path, cnnlab):
    best = checkpoint(tmp_path / "run" / "best.pt", seed=1)
    result = cnnlab("landscape", str(best), "--grid", "3", "--batches", "1", "--batch-size", "8")
    assert result.returncode == 0, result.stderr
    assert "non-convex grid points" in result.stdout
    assert picture(tmp_path / "run" / "best_landscape.png").shape == (560, 1800, 3)

    result = cnnlab(
        "gradflow", "lenet5", str(best), "--data", "digits", "--batch-size", "8", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (
        "lenet5 (initial weights)" in result.stdout
        and "lenet5_modern (run/best.pt" in result.stdout
    )
    assert picture(tmp_path / "gradflow.png").shape == (550, 1100, 3)


def test_mistakes_are_one_line_errors(tmp_path, cnnlab):
    image = png(tmp_path / "flat.png", np.zeros((16, 16)))
    result = cnnlab("convolve", image, "--filter", "sobel")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Did you mean sobel-v or sobel-h" in result.stderr

    result = cnnlab("filters", str(tmp_path / "missing.pt"), "--layer", "c1")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no checkpoint at" in result.stderr
