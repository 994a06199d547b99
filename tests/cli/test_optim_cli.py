"""``cnnlab optimizers`` and ``cnnlab optim-lab`` as a user runs them."""

import numpy as np
from PIL import Image
from rich.console import Console

from cnnlab import cli
from cnnlab.cli import main
from cnnlab.optim import list_optimizers


def test_optimizers_table_lists_every_optimizer_with_its_facts(capsys, monkeypatch):
    monkeypatch.setattr(cli, "console", Console(width=300))  # one table row per line
    assert main(["optimizers"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for entry in list_optimizers():
        row = next(line for line in lines if line.strip("│ ").startswith(entry.name + " "))
        assert entry.state in row and entry.source in row
    assert "eps=1e-07" in out  # the lecture's Adagrad nu
    assert "betas=(0.9,0.999)" in out  # the lecture's Adam defaults


def test_optim_lab_writes_picture_gif_and_table(tmp_path, cnnlab):
    result = cnnlab(
        "optim-lab",
        "rosenbrock",
        "--optimizers",
        "sgd,newton",
        "--steps",
        "22",
        "--gif",
        "--out",
        "race.png",
        cwd=tmp_path,
        env={"PATH": ""},  # the GIF needs no external program (ffmpeg, ImageMagick)
    )
    assert result.returncode == 0, result.stderr
    assert "newton" in result.stdout and "distance to minimum" in result.stdout
    with Image.open(tmp_path / "race.png") as png:
        assert png.format == "PNG" and png.size[0] > 500
    with Image.open(tmp_path / "race.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames >= 10
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    assert (first != last).any()  # the paths grow frame by frame
    rows = {
        cells[1]: cells
        for line in result.stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│")]) > 5
    }
    # columns: optimizer, lr, final f, distance to minimum, steps to tolerance, farthest
    assert float(rows["newton"][4]) < 1e-6 and rows["newton"][5] != "-"
    assert float(rows["sgd"][4]) > 0.1 and rows["sgd"][5] == "-"


def test_optim_lab_options_change_the_race(tmp_path, capsys):
    """In-process ``main`` (the code path of the script, without a second torch start-up)."""
    code = main(
        [
            "optim-lab",
            "cliff",
            "--optimizers",
            "sgd",
            "--steps",
            "10",
            "--lr",
            "sgd=0.05",
            "--start=-1,0",
            "--clip",
            "0.5",
            "--out",
            str(tmp_path / "cliff.png"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "sgd (clip 0.5)" in out and "0.05" in out and "from (-1, 0)" in out
    assert (tmp_path / "cliff.png").stat().st_size > 10_000


def test_unknown_optimizer_is_one_line_with_suggestion(tmp_path, cnnlab):
    result = cnnlab("optim-lab", "ravine", "--optimizers", "adamm", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown optimizer 'adamm'" in lines[0] and "adam" in lines[0]
    assert "cnnlab optimizers" in lines[0]


def test_unknown_function_and_bad_values_are_one_line_errors(capsys):
    for args, expected in [
        (("optim-lab", "rosenbrok"), "Did you mean rosenbrock?"),
        (("optim-lab", "ravine", "--lr", "sgd=fast"), "NAME=NUMBER"),
        (("optim-lab", "ravine", "--start", "1"), "two numbers"),
        (("optim-lab", "ravine", "--steps", "0"), "steps must be >= 1"),
    ]:
        assert main(list(args)) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and expected in err, (args, err)
