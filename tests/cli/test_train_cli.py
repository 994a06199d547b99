"""The main job, as a user types it: `cnnlab train lenet5` reaches >= 97% on the digits; and
the train/resume/evaluate/recipes commands' error paths exit 2 with one line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from cnnlab.cli import main


def cnnlab(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """`cnnlab train lenet5` with no other flag, in a fresh directory."""
    cwd = tmp_path_factory.mktemp("main_job")
    finished = cnnlab("train", "lenet5", cwd=cwd)
    return cwd, finished


def test_train_lenet5_reaches_97_percent_on_the_digits(main_job):
    cwd, finished = main_job
    assert finished.returncode == 0, finished.stderr
    (run_dir,) = (cwd / "runs").iterdir()
    assert run_dir.name.startswith("lenet5-digits-")
    assert "recipe lenet1998" in finished.stdout and "epoch  20/20" in finished.stdout
    with open(run_dir / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 20
    # LeCun et al. 1998 report 0.95% test error on MNIST; on the 360 test digits we ask 97%
    assert float(rows[-1]["test_top1"]) >= 97.0

    evaluated = cnnlab("evaluate", str(run_dir), "--tta", "flip", cwd=cwd)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "top-1" in evaluated.stdout and "360 images" in evaluated.stdout
    assert f"{run_dir} on digits" in evaluated.stdout.replace("\n", "")


def test_error_paths_are_one_line(main_job, tmp_path, capsys):
    cwd, _ = main_job
    (run_dir,) = (cwd / "runs").iterdir()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((run_dir / "checkpoint.pt").read_bytes()[:500])
    as_a_user_types_it = [
        (["train", "lenet5", "--out", str(run_dir)], f"cnnlab resume {run_dir}"),
        (["evaluate", str(truncated)], "truncated or not a torch checkpoint"),
    ]
    for args, message in as_a_user_types_it:
        finished = cnnlab(*args, cwd=tmp_path)
        assert finished.returncode == 2, (args, finished.stderr)
        assert message in finished.stderr, (args, finished.stderr)
        assert "Traceback" not in finished.stderr
    in_process = [
        (["resume", str(run_dir)], "already finished its 20 epochs; pass --epochs"),
        (["train", "lenet6"], "unknown model 'lenet6'. Did you mean lenet5"),
        (["train", "lenet5", "--recipe", "vgg2015"], "Did you mean vgg2014"),
        (["train", "lenet5", "--lr", "-1"], "learning rate must be > 0"),
    ]
    for args, message in in_process:
        assert main(args) == 2
        assert message in " ".join(capsys.readouterr().err.split())


def test_recipes_lists_every_paper(capsys):
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    for name in ("lenet1998", "alexnet2012", "resnet2016_cifar", "wrn2016_cifar", "fast_cifar"):
        assert name in listing
    detail = cnnlab("recipes", "resnet2016_cifar")
    assert detail.returncode == 0
    assert "32k and 48k iterations" in " ".join(detail.stdout.split())
