"""Bad input through the command line: one line on stderr that says what is wrong and how to
fix it, exit status 2, no traceback; and the valid input next to each case still works.

Small throughout: LeNet-5 on the bundled digits for one epoch, tiny image folders.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from cli_checks import TINY, one_line_error
from PIL import Image

from cnnlab.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


@pytest.fixture(scope="module")
def png(digit_png) -> Path:
    return digit_png


def _folder(root: Path) -> Path:
    """root/{train,val}/{cat,dog}/N.png, 16x16 of one colour each (a blue channel of 0s)."""
    for split in ("train", "val"):
        for label, colour in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(4):
                pixels = np.zeros((16, 16, 3), np.uint8)
                pixels[...] = [max(c - 20 * index, 0) for c in colour]
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


# 1. --device: every command that takes it checks it as train does ----------------------


def _device_commands(run: Path, png: Path) -> list[list[str]]:
    return [
        ["train", "lenet5", *TINY, "--out", str(run.parent / "never")],
        ["evaluate", str(run)],
        ["predict", str(run), str(png)],
        ["lr-find", "lenet5", "--steps", "20", "--out", str(run.parent / "lr.png")],
        ["landscape", str(run), "--grid", "3", "--out", str(run.parent / "l.png")],
        ["gradflow", str(run), "--out", str(run.parent / "g.png")],
    ]


def test_device_cuda_without_a_gpu_is_one_line_for_every_command(run, png, cnnlab, place):
    with mock.patch.object(torch.cuda, "is_available", return_value=False):
        for args in _device_commands(run, png):
            line = one_line_error(cnnlab(*args, "--device", "cuda", cwd=place))
            assert "no CUDA GPU is visible; use cpu" in line, args
        resumed = cnnlab("resume", run, "--epochs", "2", "--device", "cuda", cwd=place)
        assert "no CUDA GPU is visible" in one_line_error(resumed)
    assert not (place / "never").exists()


def test_device_cuda_index_beyond_the_gpus_and_a_non_device(run, cnnlab, place):
    with (
        mock.patch.object(torch.cuda, "is_available", return_value=True),
        mock.patch.object(torch.cuda, "device_count", return_value=1),
    ):
        line = one_line_error(cnnlab("evaluate", run, "--device", "cuda:5", cwd=place))
    assert "cuda:5" in line and "only 1 CUDA GPU" in line and "cuda:0" in line
    line = one_line_error(cnnlab("evaluate", run, "--device", "gpu", cwd=place))
    assert "not a device" in line and "cpu" in line
    assert cnnlab("evaluate", run, "--device", "cpu", cwd=place).returncode == 0


# 2. a relative folder:PATH is recorded absolute; resume --data-dir finds a moved folder ---


def test_relative_folder_dataset_is_found_from_elsewhere_and_after_a_move(tmp_path, cnnlab):
    work = tmp_path / "work"
    _folder(work / "fold_ok")
    args = ("--epochs", "1", "--data", "folder:fold_ok", "--batch-size", "4", "--threads", "1")
    trained = cnnlab("train", "lenet5", *args, "--out", "runs/x64", cwd=work)
    assert trained.returncode == 0, trained.stderr
    run_dir = work / "runs" / "x64"
    assert f"data: folder:{work / 'fold_ok'}" in (run_dir / "config.yaml").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    evaluated = cnnlab("evaluate", run_dir, cwd=elsewhere)
    assert evaluated.returncode == 0, evaluated.stderr

    shutil.move(work / "fold_ok", tmp_path / "moved")
    lost = one_line_error(cnnlab("resume", run_dir, "--epochs", "2", cwd=elsewhere))
    assert "no image folder tree" in lost
    resumed = cnnlab(
        "resume", run_dir, "--epochs", "2", "--data-dir", tmp_path / "moved", cwd=elsewhere
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"folder:{tmp_path / 'moved'}" in (run_dir / "config.yaml").read_text()
    assert "the folder itself" in " ".join(cnnlab("resume", "--help").stdout.split())


# 3. an ensemble of checkpoints trained on different datasets is refused ----------------


def test_ensemble_of_different_datasets_is_refused(run, place, cnnlab):
    other = cnnlab("train", "lenet5", *TINY, "--data", "synthetic:1x32x32", "--out", place / "x63")
    assert other.returncode == 0, other.stderr
    line = one_line_error(cnnlab("evaluate", run, place / "x63", cwd=place))
    assert "different datasets" in line and "digits" in line and "synthetic" in line
    same = cnnlab("evaluate", run, run, cwd=place)
    assert same.returncode == 0 and "ensemble of 2" in same.stdout


# 4. lab --grid as landscape; optim-lab --lr and --optimizers names ----------------------


@pytest.mark.parametrize("grid", ["0", "-1", "2"])
def test_lab_grid_is_checked_as_landscape_checks_it(grid, run, place, cnnlab):
    line = one_line_error(
        cnnlab("lab", run, "--export", place / "l.html", "--grid", grid, cwd=place)
    )
    assert f"--grid must be at least 3 points per axis, got {grid}" in line
    assert not (place / "l.html").exists()


def test_optim_lab_unknown_or_absent_optimizer_names(tmp_path, cnnlab):
    line = one_line_error(cnnlab("optim-lab", "ravine", "--lr", "nosuch=0.1", cwd=tmp_path))
    assert "nosuch" in line and "not an optimizer" in line and "sgd" in line and "adam" in line
    line = one_line_error(
        cnnlab("optim-lab", "ravine", "--optimizers", "sgd", "--lr", "adam=0.1", cwd=tmp_path)
    )
    assert "'adam' is not in this race" in line and "sgd" in line
    line = one_line_error(cnnlab("optim-lab", "ravine", "--optimizers", "", cwd=tmp_path))
    assert "--optimizers names no optimizer" in line and "momentum" in line
    fine = cnnlab(
        "optim-lab", "ravine", "--optimizers", "sgd,adam", "--lr", "sgd=0.1", "--steps", "5",
        cwd=tmp_path,
    )  # fmt: skip
    assert fine.returncode == 0, fine.stderr


# 5. default run names do not collide; train without a model trains LeNet-5 -------------


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    from cnnlab.training import engine, resolve_config

    monkeypatch.chdir(tmp_path)
    fixed = datetime(2026, 1, 2, 10, 16, 7)
    with mock.patch.object(engine, "datetime", mock.Mock(now=mock.Mock(return_value=fixed))):
        first = engine.Trainer(resolve_config("lenet5", epochs=1, threads=1, batch_size=128))
        second = engine.Trainer(resolve_config("lenet5", epochs=1, threads=1, batch_size=128))
    assert first.run_dir == second.run_dir  # both named before either started
    assert first.run().run_dir.name == "lenet5-digits-20260102-101607"
    assert second.run().run_dir.name == "lenet5-digits-20260102-101607-2"
    assert (tmp_path / "runs" / "lenet5-digits-20260102-101607-2" / "checkpoint.pt").is_file()


def test_train_help_and_behaviour_agree_that_a_model_is_required(tmp_path, cnnlab):
    overview = " ".join(cnnlab("--help").stdout.split())
    assert "default: LeNet-5" not in overview and "train lenet5" in overview
    helped = " ".join(cnnlab("train", "--help").stdout.split())
    assert "required unless --config names one" in helped
    line = one_line_error(cnnlab("train", *TINY, cwd=tmp_path))
    assert "give a model to train, e.g. `cnnlab train lenet5`" in line and "--config" in line
    assert not (tmp_path / "runs").exists()


# 6. messages --------------------------------------------------------------------------


def test_bad_yaml_config_is_one_line_with_line_and_column(tmp_path, cnnlab):
    (tmp_path / "bad.yaml").write_text("epochs: [1\n")
    line = one_line_error(cnnlab("train", "lenet5", "--config", "bad.yaml", cwd=tmp_path))
    assert "bad.yaml" in line and "line 2, column 1" in line and "expected ','" in line


def test_init_weights_missing_file_or_directory(tmp_path, cnnlab):
    line = one_line_error(
        cnnlab("train", "lenet5", "--init-weights", "/nonexistent.pt", cwd=tmp_path)
    )
    assert "/nonexistent.pt: no such file" in line and "pretrained" not in line
    line = one_line_error(cnnlab("train", "lenet5", "--init-weights", tmp_path, cwd=tmp_path))
    assert "is a directory" in line and "best.pt" in line
    line = one_line_error(cnnlab("train", "lenet5", "--init-weights", "nosuch", cwd=tmp_path))
    assert "has no pretrained weights" in line  # a name is still taken as a weights name
    assert not (tmp_path / "runs").exists()


def test_weights_and_weights_file_conflict_names_both_flags(run, cnnlab, place):
    args = ("evaluate", "lenet5", "--weights-file", run / "best.pt", "--weights", "cifar10")
    line = one_line_error(cnnlab(*args, cwd=place))
    assert "--weights cifar10 conflicts with --weights-file" in line and "drop --weights" in line
    alone = cnnlab(
        "evaluate", "lenet5", "--weights-file", run / "best.pt", "--data", "digits", cwd=place
    )
    assert alone.returncode == 0, alone.stderr


def test_a_picture_is_not_a_run_nor_a_checkpoint(run, png, cnnlab, place):
    line = one_line_error(cnnlab("plot", png, cwd=place))
    assert "is not a run directory or its metrics.csv" in line and "epoch" not in line
    line = one_line_error(cnnlab("resume", png, cwd=place))
    assert "not a torch checkpoint" in line and "loading would run" not in line
    plotted = cnnlab("plot", run, "--out", place / "curves.png", cwd=place)
    assert plotted.returncode == 0, plotted.stderr


def test_checkpoint_missing_a_key_names_it(run, place, cnnlab):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    del state["model"]["features.c1.weight"]
    broken = place / "broken"
    broken.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        shutil.copy(run / name, broken / name)
    torch.save(state, broken / "checkpoint.pt")
    for args in (["evaluate", broken / "checkpoint.pt"], ["resume", broken, "--epochs", "2"]):
        line = one_line_error(cnnlab(*args, cwd=place))
        assert "1 missing (features.c1.weight" in line, args
        assert "Error(s) in loading" not in line


def test_python_only_hints_also_name_the_command_line():
    from cnnlab.optim._objective import check_dense_matrix_fits

    with pytest.raises(ConfigError) as caught:
        check_dense_matrix_fits("newton", 10**6, 4, 1e9, False)
    assert "force=True in Python" in str(caught.value)
    assert "--optimizer-arg force=true" in str(caught.value)


def test_datasets_no_download_hint_names_the_flag(tmp_path, cnnlab):
    line = one_line_error(
        cnnlab("datasets", "mnist", "--data-dir", tmp_path, "--no-download", cwd=tmp_path)
    )
    assert "leave out --no-download" in line and "download=True in Python" in line


@pytest.mark.parametrize("flag", ["--end-lr", "--start-lr"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_lr_find_rates_must_be_finite(flag, value, tmp_path, cnnlab):
    line = one_line_error(cnnlab("lr-find", "lenet5", "--steps", "20", flag, value, cwd=tmp_path))
    assert f"{flag} must be a finite number" in line
    assert "blew up" not in line
