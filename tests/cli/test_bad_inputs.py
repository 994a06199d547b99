"""A user's mistakes, through the command line in-process: one line on stderr, exit status 2,
no traceback, nothing written; and the cases that used to give a silently wrong answer give
the right one.

Every case is small: LeNet-5 on the bundled digits for one epoch, or a few 32x32 images.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import TINY, one_line_error
from PIL import Image

from cnnlab.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.run_metrics import read_metrics
from cnnlab.training.rundir import RunDirLock

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


@pytest.fixture(scope="module")
def a_file(place) -> Path:
    path = place / "plain.txt"
    path.write_text("not a directory\n")
    return path


def _image_folder(root: Path, bad: str | None = None) -> Path:
    """root/{train,test}/{a,b}/N.png, 32x32; ``bad`` names a broken file to add to train/b."""
    for split in ("train", "test"):
        for label, value in (("a", 30), ("b", 220)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(4):
                pixels = np.full((32, 32, 3), value + index, np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    if bad == "truncated.jpg":
        path = root / "train" / "b" / bad
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(
            path, format="JPEG"
        )
        path.write_bytes(path.read_bytes()[:200])
    elif bad is not None:
        (root / "train" / "b" / bad).write_text("<html>404 not found</html>\n")
    return root


# ---------------------------------------------------------------- outputs that cannot be written


def _out_cases(run, a_file, digit_png):
    unwritable = "/proc/cnnlab-out"
    return [
        (["train", "lenet5", *TINY, "--out", a_file], "is an existing file"),
        (["train", "lenet5", *TINY, "--out", a_file / "run"], "is a file, not a directory"),
        (["train", "lenet5", *TINY, "--out", unwritable], "not writable"),
        (["report", run, "--out", f"{unwritable}.html"], "not writable"),
        (["report", run, "--out", a_file / "r.html"], "is a file, not a directory"),
        (["optim-lab", "rosenbrock", "--out", f"{unwritable}.png"], "not writable"),
        (["plot", run, "--out", a_file / "curves.png"], "is a file, not a directory"),
        (["compare", "resnet18", "--out", a_file.parent], "is an existing directory"),
        (["filters", run, "--out", f"{unwritable}.png"], "not writable"),
        (["saliency", run, digit_png, "--out", a_file / "s.png"], "is a file"),
        (["lr-find", "lenet5", "--steps", "5", "--out", f"{unwritable}.png"], "not writable"),
        (["landscape", run, "--grid", "3", "--out", a_file / "l.png"], "is a file"),
    ]


def test_an_output_that_cannot_be_written_is_refused_before_the_work(
    cnnlab, run, a_file, digit_png
):
    for args, expected in _out_cases(run, a_file, digit_png):
        line = one_line_error(cnnlab(*args))
        assert expected in line, (args, line)
    assert not Path("/proc/cnnlab-out").exists()


# ------------------------------------------------------------------------------ tracebacks


@pytest.mark.parametrize("bad", ["truncated.jpg", "page.png"])
def test_an_unreadable_image_is_named_and_can_be_skipped(cnnlab, tmp_path, bad):
    root = _image_folder(tmp_path / "images", bad)
    args = ["train", "lenet5_modern", "--data", f"folder:{root}", "--epochs", "1"]
    line = one_line_error(cnnlab(*args, "--batch-size", "4", "--out", tmp_path / "r1"))
    assert str(root / "train" / "b" / bad) in line and "--skip-bad-images" in line
    assert not (tmp_path / "r1").exists()
    skipped = cnnlab(*args, "--batch-size", "4", "--skip-bad-images", "--out", tmp_path / "r2")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 1 unreadable image file(s)" in skipped.stdout and bad in skipped.stdout
    evaluated = cnnlab("evaluate", tmp_path / "r2")  # reads the data as the run did
    assert evaluated.returncode == 0 and "(8 images)" in evaluated.stdout, evaluated.stderr
    assert bad in one_line_error(cnnlab("datasets", f"folder:{root}"))
    described = cnnlab("datasets", f"folder:{root}", "--skip-bad-images")
    assert described.returncode == 0 and "1 unreadable" in described.stdout, described.stderr


@pytest.mark.parametrize("target", ["10", "-1", "99999"])
def test_a_saliency_target_outside_the_classes(cnnlab, run, digit_png, target):
    line = one_line_error(cnnlab("saliency", run, digit_png, "--target", target))
    assert "10 classes, 0 to 9" in line


def test_a_run_directory_in_use_is_refused_to_train_and_resume(cnnlab, run, tmp_path):
    with RunDirLock(run):
        before = (run / "metrics.csv").read_bytes()
        assert "in use" in one_line_error(cnnlab("resume", run, "--epochs", "2"))
        assert (run / "metrics.csv").read_bytes() == before
    with RunDirLock(tmp_path / "fresh"):
        line = one_line_error(cnnlab("train", "lenet5", *TINY, "--out", tmp_path / "fresh"))
        assert "in use" in line
    assert os.listdir(tmp_path / "fresh") == [".cnnlab.lock"]


def test_resume_of_a_foreign_checkpoint_refuses_and_touches_nothing(cnnlab, run, tmp_path):
    other = tmp_path / "other"
    assert cnnlab("train", "lenet5_modern", *TINY, "--out", other).returncode == 0
    target = tmp_path / "copy"
    target.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        (target / name).write_bytes((run / name).read_bytes())
    save_checkpoint(load_checkpoint(other), target / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    line = one_line_error(cnnlab("resume", target, "--epochs", "2"))
    assert "does not belong" in line and "lenet5_modern" in line
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def test_a_checkpoint_that_would_run_code_is_refused_in_a_whole_sentence(cnnlab, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    line = one_line_error(cnnlab("evaluate", tmp_path / "evil.pt"))
    assert "system" in line and line.endswith("or a plain state dict") and not marker.exists()


# ------------------------------------------------------------------------- silently wrong


def test_evaluate_with_the_wrong_channel_count_gives_no_multiscale_hint(cnnlab, run):
    line = one_line_error(cnnlab("evaluate", run, "--data", "synthetic", "--tta", "none"))
    assert "3x32x32" in line and "multi-scale" not in line and "--data" in line


def test_evaluate_agrees_with_the_runs_metrics_and_says_its_precision(cnnlab, run):
    row = read_metrics(run / "metrics.csv")[-1]
    result = cnnlab("evaluate", run)
    assert result.returncode == 0, result.stderr
    assert f"precision {row['eval_precision']}" in result.stdout
    assert f"{row['test_top1']:.2f}%" in result.stdout
    other = "fp32" if row["eval_precision"] == "bf16" else "bf16"
    flag = "--no-amp" if other == "fp32" else "--amp"
    assert f"precision {other}" in cnnlab("evaluate", run, flag).stdout


def test_a_bf16_run_is_evaluated_in_float32_where_bf16_is_only_emulated(cnnlab, place):
    """Emulated bf16 is many times slower than float32: evaluate falls back and says so."""
    from cnnlab import evaluation

    bf16_run = place / "bf16-run"
    assert cnnlab("train", "lenet5", *TINY, "--amp", "--out", bf16_run).returncode == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "bf16_supported", lambda device: False)
        fallback = cnnlab("evaluate", bf16_run)
        forced = cnnlab("evaluate", bf16_run, "--amp")
    assert fallback.returncode == 0, fallback.stderr
    assert "precision fp32" in fallback.stdout and "--amp to repeat" in fallback.stdout
    assert "precision bf16" in forced.stdout and "--amp to repeat" not in forced.stdout


def test_metrics_record_precision_and_machine_and_resume_keeps_the_precision(cnnlab, run, place):
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert isinstance(config["amp"], bool) and isinstance(config["eval_amp"], bool)
    row = read_metrics(run / "metrics.csv")[0]
    assert f"torch {torch.__version__}" in row["machine"] and "threads" in row["machine"]
    resumed = place / "resumed"
    assert cnnlab("train", "lenet5", *TINY, "--amp", "--out", resumed).returncode == 0
    # a resume on a machine that would decide otherwise keeps the recorded bf16
    from cnnlab.training import engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "bf16_supported", lambda device: False)
        assert cnnlab("resume", resumed, "--epochs", "2").returncode == 0
    assert [row["eval_precision"] for row in read_metrics(resumed / "metrics.csv")] == [
        "bf16",
        "bf16",
    ]


def test_a_huge_rate_is_diagnosed_as_saturation(cnnlab, tmp_path):
    result = cnnlab(
        "train", "lenet5", "--lr", "1e6", "--epochs", "3", "--batch-size", "128",
        "--threads", "1", "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "saturated" in result.stdout and "probably too low" not in result.stdout


def test_an_epoch_of_skipped_steps_is_logged_as_nan_and_diagnosed(cnnlab, tmp_path):
    result = cnnlab(
        "train", "lenet5_modern", "--lr", "1e30", "--on-nonfinite", "skip", "--epochs", "2",
        "--batch-size", "128", "--threads", "1", "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    second = read_metrics(tmp_path / "run" / "metrics.csv")[1]
    assert math.isnan(second["train_loss"]) and math.isnan(second["train_top1"])
    assert "every step of epoch(s) 2 was skipped" in result.stdout


def test_a_failed_dataset_lookup_creates_nothing(cnnlab, tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(root, download=False, **kwargs):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    typo = tmp_path / "nonexistent" / "dir"
    assert "download failed" in one_line_error(cnnlab("datasets", "mnist", "--data-dir", typo))
    line = one_line_error(cnnlab("train", "lenet5", *TINY, "--data", "mnist", "--data-dir", typo))
    assert "mnist" in line
    assert not (tmp_path / "nonexistent").exists()


def test_saliency_of_lenet5_draws_the_maps_that_need_no_relu(cnnlab, run, digit_png, tmp_path):
    result = cnnlab("saliency", run, digit_png, "--out", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr
    assert "guided backpropagation and deconvnet skipped" in result.stdout
    assert (tmp_path / "s.png").is_file()


def test_lr_find_does_not_say_no_blow_up_when_the_loss_blew_up(cnnlab, tmp_path):
    result = cnnlab(
        "lr-find", "lenet5_modern", "--steps", "40", "--start-lr", "1e-3", "--end-lr", "1e4",
        "--out", tmp_path / "lr.png",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no blow-up" not in result.stdout and "blew up" in result.stdout


def test_resume_after_the_data_gained_a_class_refuses_and_touches_nothing(cnnlab, tmp_path):
    root = _image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    result = cnnlab(
        "train", "lenet5_modern", "--data", f"folder:{root}", "--epochs", "1",
        "--batch-size", "4", "--out", run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for split in ("train", "test"):
        (root / split / "c").mkdir()
        for index in range(4):
            Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(
                root / split / "c" / f"{index}.png"
            )
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    line = one_line_error(cnnlab("resume", run_dir, "--epochs", "2"))
    assert "num_classes 2 in the checkpoint, 3 from" in line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
