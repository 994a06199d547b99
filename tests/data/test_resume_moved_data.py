"""A run continues on another machine: the run directory and its dataset both moved."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from data_files import write_mnist

from cnnlab.checkpoint import load_checkpoint
from cnnlab.cli import main
from cnnlab.training import train

OPTIONS = dict(model="lenet5", data="mnist", batch_size=8, lr=0.01, seed=1, threads=1)


def test_resume_with_data_dir_continues_a_moved_run_exactly(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 28, 28), dtype=np.uint8)
    labels = np.arange(48) % 10
    data = tmp_path / "mnist"
    write_mnist(data, images[:32], labels[:32], images[32:], labels[32:])
    train(**OPTIONS, data_dir=str(data), epochs=3, out=str(tmp_path / "reference"))
    train(**OPTIONS, data_dir=str(data), epochs=2, out=str(tmp_path / "first-machine"))
    moved_run = tmp_path / "second-machine" / "run"
    shutil.copytree(tmp_path / "first-machine", moved_run)
    moved_data = shutil.move(str(data), str(tmp_path / "second-machine" / "mnist"))

    assert main(["resume", str(moved_run), "--epochs", "3"]) == 2  # the old path is gone
    assert "mnist" in capsys.readouterr().err
    assert main(["resume", str(moved_run), "--epochs", "3", "--data-dir", moved_data]) == 0
    resumed, reference = load_checkpoint(moved_run), load_checkpoint(tmp_path / "reference")
    assert resumed["epoch"] == 3 and resumed["config"]["data_dir"] == moved_data
    for name, tensor in reference["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name
