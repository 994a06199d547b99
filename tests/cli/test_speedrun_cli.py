"""The speedrun tricks from the command line: flags override the recipe, evaluate takes
--tta flipshift, a bad value is one line."""

from __future__ import annotations

import yaml


def test_flags_switch_tricks_on_and_off_over_the_recipe(tmp_path, cnnlab):
    run_dir = tmp_path / "run"
    finished = cnnlab(
        "train", "speedrun_cifar_net", "--recipe", "speedrun_cifar", "--data", "digits",
        "--model-arg", "widths=[8,8,8]", "--epochs", "1", "--batch-size", "256",
        "--no-whitening", "--lookahead", "0.9", "--lookahead-every", "3",
        "--norm-bias-lr-scale", "16", "--augment", "translate1+altflip", "--threads", "1",
        "--out", str(run_dir), cwd=tmp_path,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["whitening"] is False and config["dirac_init"] is True  # recipe kept
    assert (config["lookahead"], config["lookahead_every"]) == (0.9, 3)
    assert config["norm_bias_lr_scale"] == 16 and config["optimizer"] == "muon"
    assert config["augment"] == "translate1+altflip"
    evaluated = cnnlab("evaluate", str(run_dir), "--tta", "flipshift", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "tta flipshift" in evaluated.stdout


def test_bad_trick_value_is_one_line(tmp_path, cnnlab):
    finished = cnnlab(
        "train", "speedrun_cifar_net", "--recipe", "speedrun_cifar", "--data", "digits",
        "--lookahead", "1.5", cwd=tmp_path,
    )  # fmt: skip
    assert finished.returncode == 2
    assert "lookahead" in finished.stderr and len(finished.stderr.strip().splitlines()) == 1
