"""Input past a limit, through the command line in-process: an image over PIL's pixel limit,
numbers too large for torch, NaN and infinity, mismatched models, edited checkpoints and
counts that would run for hours. Each is one line on stderr and exit status 2, and the valid
input beside it still works.

Every case is small: LeNet-5 on the bundled digits for one epoch, or a few 32x32 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import TINY, one_line_error
from PIL import Image

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

SEED_MAX = 2**64 - 1


def ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def two_class_run(place, cnnlab) -> Path:
    """A one-epoch LeNet-5 run on a 2-class image folder."""
    root = place / "two"
    for split in ("train", "test"):
        for label, value in (("a", 30), ("b", 220)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(4):
                pixels = np.full((32, 32), value + index, np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    args = ("--epochs", "1", "--batch-size", "4", "--threads", "1")
    ok(cnnlab("train", "lenet5", "--data", f"folder:{root}", *args, "--out", place / "two-run"))
    return place / "two-run"


# -------------------------------------------------------------------- 1. decompression bomb


def test_an_image_over_pils_pixel_limit_is_one_line_in_every_command(
    cnnlab, run, digit_png, tmp_path, monkeypatch
):
    ok(cnnlab("predict", run, digit_png))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 32×32 is over twice this: a "bomb"
    commands = [
        ("predict", run, digit_png),
        ("features", run, digit_png, "--out", tmp_path / "f.png"),
        ("saliency", run, digit_png, "--out", tmp_path / "s.png"),
        ("convolve", digit_png, "--filter", "blob", "--out", tmp_path / "c.png"),
        ("lab", run, "--export", tmp_path / "l.html", "--image", digit_png, "--grid", "3"),
    ]
    for args in commands:
        line = one_line_error(cnnlab(*args))
        assert "too large" in line and "32×32" in line and "100 pixels" in line, (args, line)
        assert "resize" in line
    assert not list(tmp_path.iterdir())
    monkeypatch.undo()
    ok(cnnlab("convolve", digit_png, "--filter", "blob", "--out", tmp_path / "c.png"))


# ------------------------------------------------------------------------- 2. huge numbers


@pytest.mark.parametrize(
    "args",
    [
        ("lenet5", "--batch-size", "9223372036854775807"),
        ("lenet5", "--batch-size", "99999999999999999999"),
        ("conv6-fc10", "--input", "3x99999999999x99999999999"),
    ],
)
def test_summary_of_a_size_no_tensor_can_hold(cnnlab, args):
    line = one_line_error(cnnlab("summary", *args))
    assert "more than one tensor can hold" in line and "2**60" in line


def test_summary_of_a_large_but_possible_size_still_works(cnnlab):
    ok(cnnlab("summary", "lenet5", "--batch-size", "1000000"))
    ok(cnnlab("summary", "conv6-gap-fc10", "--input", "3x100000x100000"))


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999", str(SEED_MAX + 1)])
def test_every_seed_option_takes_the_same_range(cnnlab, run, tmp_path, seed):
    commands = [
        ("train", "lenet5", *TINY, "--out", tmp_path / "r"),
        ("landscape", run, "--grid", "3", "--batches", "1", "--out", tmp_path / "l.png"),
        ("lr-find", "lenet5", "--steps", "3", "--out", tmp_path / "lr.png"),
        ("gradflow", run, "--out", tmp_path / "g.png"),
    ]
    for args in commands:
        line = one_line_error(cnnlab(*args, "--seed", seed))
        assert f"seed must be an integer in [0, {SEED_MAX}], got {seed}" in line, (args, line)
    assert not list(tmp_path.iterdir())


def test_the_largest_seed_works(cnnlab, run, tmp_path):
    ok(cnnlab("gradflow", run, "--seed", SEED_MAX, "--out", tmp_path / "g.png"))
    ok(cnnlab("lr-find", "lenet5", "--steps", "3", "--seed", SEED_MAX, "--out", tmp_path / "l.png"))


def test_an_allocation_that_fails_is_one_line(cnnlab, monkeypatch):
    line = one_line_error(cnnlab("datasets", "synthetic:3x100000x100000"))
    assert line.startswith("error: not enough memory for datasets")
    assert "reduce the batch size or the input size" in line
    import cnnlab.sizing as sizing

    for error in (MemoryError(), torch.OutOfMemoryError("CUDA out of memory.")):

        def fails(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(sizing, "summary", fails)
        line = one_line_error(cnnlab("summary", "lenet5"))
        assert "not enough memory for summary" in line


def test_other_runtime_errors_are_not_called_memory(cnnlab, monkeypatch):
    import cnnlab.sizing as sizing

    def fails(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(sizing, "summary", fails)
    with pytest.raises(RuntimeError, match="something else"):
        cnnlab("summary", "lenet5")


# ---------------------------------------------------------------------------- 3. NaN, inf


@pytest.mark.parametrize("span", ["nan", "inf", "-inf", "1e300", "0", "-1"])
def test_a_landscape_span_must_be_finite_positive_and_bounded(cnnlab, run, tmp_path, span):
    args = ("landscape", run, "--grid", "3", "--batches", "1", "--out", tmp_path / "l.png")
    line = one_line_error(cnnlab(*args, f"--span={span}"))  # -inf is not an option
    assert "--span must be a finite number in (0, 100]" in line
    assert not (tmp_path / "l.png").exists()


def test_a_small_landscape_span_still_works(cnnlab, run, tmp_path):
    args = ("landscape", run, "--grid", "3", "--batches", "1", "--batch-size", "8")
    ok(cnnlab(*args, "--span", "0.5", "--out", tmp_path / "l.png"))
    assert (tmp_path / "l.png").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "150", "-5"])
def test_compare_refuses_a_top1_that_is_not_a_percentage(cnnlab, tmp_path, value):
    results = tmp_path / "r.csv"
    results.write_text(f"model,top1\nresnet18,69.8\nresnet34,{value}\n")
    line = one_line_error(cnnlab("compare", "resnet18", "resnet34", "--results", results))
    assert str(results) in line and "line 3" in line and f"'{value}'" in line
    assert "from 0 to 100" in line


def test_compare_refuses_a_binary_results_file(cnnlab, tmp_path, digit_png):
    line = one_line_error(cnnlab("compare", "resnet18", "--results", digit_png))
    assert str(digit_png) in line and "not a text CSV" in line


def test_compare_with_valid_percentages_still_works(cnnlab, tmp_path):
    results = tmp_path / "r.csv"
    results.write_text("model,top1\nresnet18,0\nresnet34,100\n")
    out = tmp_path / "c.png"
    ok(cnnlab("compare", "resnet18", "resnet34", "--results", results, "--out", out))


# ------------------------------------------------------- 4. mismatches, ports, checkpoints


def test_gradflow_refuses_models_with_different_class_counts(cnnlab, run, two_class_run, tmp_path):
    line = one_line_error(cnnlab("gradflow", run, two_class_run, "--out", tmp_path / "g.png"))
    assert "different numbers of classes" in line and ": 10" in line and ": 2" in line
    assert not (tmp_path / "g.png").exists()
    ok(cnnlab("gradflow", run, run, "--out", tmp_path / "g.png"))


@pytest.mark.parametrize("port", ["-1", "65536", "99999"])
def test_a_lab_port_outside_0_to_65535(cnnlab, run, port):
    line = one_line_error(cnnlab("lab", run, "--port", port, "--no-browser"))
    assert "port must be 0 (a free one) to 65535" in line and port in line


@pytest.mark.parametrize(
    ("key", "value", "what"),
    [
        ("config", "garbage", "'config' entry should be a mapping"),
        ("model_kwargs", [1, 2], "'model_kwargs' entry should be a mapping"),
        ("model_name", 5, "'model_name' entry should be the model's name"),
        ("epoch", "one", "'epoch' entry should be a whole number"),
    ],
)
def test_a_checkpoint_with_an_edited_entry(cnnlab, run, digit_png, tmp_path, key, value, what):
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    state[key] = value
    torch.save(state, tmp_path / "ck.pt")
    for args in (("evaluate", tmp_path / "ck.pt"), ("predict", tmp_path / "ck.pt", digit_png)):
        line = one_line_error(cnnlab(*args))
        assert what in line and "damaged or was edited" in line, (args, line)


def test_an_unedited_checkpoint_still_predicts(cnnlab, run, digit_png):
    ok(cnnlab("predict", run / "checkpoint.pt", digit_png))


# ------------------------------------------------------------------------ 5. upper bounds


@pytest.mark.parametrize(
    "spec",
    ["[conv6]x99999999", "[[conv6]x1000]x1000", "-".join(["conv6"] * 2001)],
)
def test_a_spec_expanding_past_the_layer_cap(cnnlab, spec):
    line = one_line_error(cnnlab("summary", spec, "--input", "3x8x8"))
    assert "at most 2000" in line


def test_a_spec_at_a_reasonable_depth_still_works(cnnlab):
    ok(cnnlab("summary", "[conv6k3p1]x50", "--input", "3x8x8"))


def test_a_landscape_grid_past_the_cap(cnnlab, run, tmp_path):
    args = ("landscape", run, "--batches", "1", "--out", tmp_path / "l.png")
    line = one_line_error(cnnlab(*args, "--grid", "100000"))
    assert "--grid must be at most 501" in line
    line = one_line_error(cnnlab("lab", run, "--export", tmp_path / "p.html", "--grid", "100000"))
    assert "--grid must be at most 501" in line
    assert not list(tmp_path.iterdir())


def test_optim_lab_steps_past_the_cap(cnnlab, tmp_path):
    line = one_line_error(cnnlab("optim-lab", "ravine", "--steps", "100000000"))
    assert "--steps must be at most 100,000" in line
    ok(cnnlab("optim-lab", "ravine", "--steps", "20", "--out", tmp_path / "o.png"))


@pytest.mark.parametrize(("option", "command"), [("--export", "lab"), ("--out", "report")])
def test_an_empty_output_path_is_an_error(cnnlab, run, option, command):
    line = one_line_error(cnnlab(command, run, option, ""))
    assert f"{option} is empty" in line


def test_more_threads_than_cpus(cnnlab, tmp_path):
    import os

    cpus = os.cpu_count()
    args = ("train", "lenet5", "--epochs", "1", "--out", tmp_path / "r")
    line = one_line_error(cnnlab(*args, "--threads", "10000"))
    assert f"more than this machine's {cpus} CPUs" in line and f"1 to {cpus}" in line
    config = tmp_path / "c.yaml"
    config.write_text("threads: 10000\n")
    line = one_line_error(cnnlab(*args, "--config", config))
    assert "--threads 10000" in line
    assert not (tmp_path / "r").exists()
