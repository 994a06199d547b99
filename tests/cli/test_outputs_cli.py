"""Where a command writes: never over its own input, never over a run's files, never in a format
its file name does not say. Each refusal is one line, exit 2, with the file left as it was; the
same commands still write pictures in any format matplotlib knows from the extension."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import one_line_error, write_digit_png


@pytest.fixture
def image(tmp_path) -> Path:
    return write_digit_png(tmp_path / "digit.png")  # a fresh copy: the tests check it is intact


@pytest.mark.parametrize(
    ("command", "protected"),
    [
        (["plot", "{run}", "--out", "{run}/checkpoint.pt"], "checkpoint.pt"),
        (["plot", "{run}", "--out", "{run}/metrics.csv"], "metrics.csv"),
        (["report", "{run}", "--out", "{run}/checkpoint.pt"], "checkpoint.pt"),
        (["report", "{run}", "--out", "{run}/config.yaml"], "config.yaml"),
        (["export", "{run}", "--format", "safetensors", "--out", "{run}/checkpoint.pt"],
         "checkpoint.pt"),
        (["export", "{run}/best.pt", "--format", "torchscript", "--out", "{run}/best.pt"],
         "best.pt"),
        (["filters", "{run}", "--out", "{run}/best.pt"], "best.pt"),
        (["lr-find", "lenet5", "--steps", "5", "--out", "{run}/checkpoint.pt"], "checkpoint.pt"),
        (["lab", "{run}", "--export", "{run}/checkpoint.pt", "--surfaces", "saddle"],
         "checkpoint.pt"),
    ],
)  # fmt: skip
def test_a_runs_files_are_never_overwritten(cnnlab, run, command, protected):
    before = (run / protected).read_bytes()
    message = one_line_error(cnnlab(*[part.format(run=run) for part in command]))
    assert protected in message
    assert (run / protected).read_bytes() == before


@pytest.mark.parametrize("command", ["convolve", "features", "saliency"])
def test_a_picture_never_replaces_the_image_it_shows(cnnlab, run, image, command):
    before = image.read_bytes()
    argv = [image, "--filter", "blob"] if command == "convolve" else [run, image]
    message = one_line_error(cnnlab(command, *argv, "--out", image))
    assert "input" in message and image.read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [
        ["plot", "{run}"],
        ["filters", "{run}"],
        ["gradflow", "{run}"],
        ["optim-lab", "saddle", "--steps", "5"],
        ["compare", "resnet18"],
        ["lr-find", "lenet5", "--steps", "5"],
        ["landscape", "{run}", "--grid", "3", "--batches", "1"],
    ],
)
def test_a_picture_in_a_format_matplotlib_cannot_write_is_refused(cnnlab, run, tmp_path, command):
    out = tmp_path / "picture.txt"
    message = one_line_error(cnnlab(*[str(p).format(run=run) for p in command], "--out", out))
    assert ".png" in message and not out.exists()


def test_pictures_are_written_in_the_format_their_extension_names(cnnlab, run, tmp_path):
    for suffix, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")):
        out = tmp_path / f"curves{suffix}"
        assert cnnlab("plot", run, "--out", out).returncode == 0
        assert out.read_bytes().startswith(magic)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, nothing left behind


def test_report_and_export_names_say_their_format(cnnlab, run, tmp_path):
    assert ".html" in one_line_error(cnnlab("report", run, "--out", tmp_path / "r.png"))
    message = one_line_error(cnnlab("export", run, "--format", "onnx", "--out", tmp_path / "m.pt"))
    assert ".onnx" in message and not (tmp_path / "m.pt").exists()
