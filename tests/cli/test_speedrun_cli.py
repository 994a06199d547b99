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
        "--norm-bias-lr-scale", "16", "--augment", "translate1+altflip+jitter10", "--threads", "1",
        "--out", str(run_dir), cwd=tmp_path,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["whitening"] is False and config["dirac_init"] is True  # recipe kept
    assert (config["lookahead"], config["lookahead_every"]) == (0.9, 3)
    assert config["norm_bias_lr_scale"] == 16 and config["optimizer"] == "muon"
    assert config["augment"] == "translate1+altflip+jitter10"
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


def test_small_crop_trains_early_epochs_on_crops_and_is_kept_in_the_config(tmp_path, cnnlab):
    run_dir = tmp_path / "run"
    finished = cnnlab(
        "train", "speedrun_cifar_net", "--data", "digits", "--model-arg", "widths=[8,8,8]",
        "--epochs", "2", "--batch-size", "256", "--small-crop", "28", "--small-crop-epochs", "1",
        "--threads", "1", "--out", str(run_dir), cwd=tmp_path,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert "epoch 1 trains on random 28x28 crops" in finished.stdout
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (config["small_crop"], config["small_crop_epochs"]) == (28, 1)


def test_bad_small_crops_are_one_line(tmp_path, cnnlab):
    common = ("train", "speedrun_cifar_net", "--data", "digits", "--model-arg", "widths=[8,8,8]")
    cases = {
        ("--small-crop", "28"): "needs --small-crop-epochs",
        ("--small-crop", "0", "--small-crop-epochs", "1"): "--small-crop must be >= 1",
        ("--small-crop", "40", "--small-crop-epochs", "1"): "does not fit the 32x32 images",
        ("--small-crop", "24", "--small-crop-epochs", "1"): "cannot take --small-crop 24",
    }
    for flags, reason in cases.items():
        finished = cnnlab(*common, *flags, "--out", str(tmp_path / "run"), cwd=tmp_path)
        assert finished.returncode == 2, (flags, finished.stdout)
        assert reason in finished.stderr and len(finished.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_recipes_small_crop_that_does_not_fit_is_left_out_and_said(tmp_path, cnnlab, monkeypatch):
    from cnnlab.training.recipes import get_recipe

    settings = get_recipe("speedrun_cifar").settings  # a recipe with small crops
    monkeypatch.setitem(settings, "small_crop", 28)
    monkeypatch.setitem(settings, "small_crop_epochs", 3)
    run_dir = tmp_path / "run"
    finished = cnnlab(
        "train", "speedrun_cifar_net", "--recipe", "speedrun_cifar", "--data", "digits",
        "--model-arg", "widths=[8,8,8]", "--input-size", "1", "36", "36", "--epochs", "1",
        "--batch-size", "256", "--threads", "1", "--out", str(run_dir), cwd=tmp_path,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert "every epoch trains on whole images" in finished.stdout
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["small_crop"] is None
