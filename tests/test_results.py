"""The results table: one copy in the package, the same in README.md, every row rerunnable."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

import cnnlab.results as results_module
from cnnlab.cli import build_parser, main
from cnnlab.models import list_models
from cnnlab.results import NOT_MEASURED, RESULTS, results_markdown
from cnnlab.training.recipes import get_recipe

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- results table: cnnlab results --markdown -->", "<!-- end of results table -->"


def test_readme_table_is_what_the_command_prints(capsys):
    text = README.read_text()
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert main(["results", "--markdown"]) == 0
    assert shown == capsys.readouterr().out.strip() == results_markdown()


CNNLAB_ROWS = [row for row in RESULTS if "airbench94_cpu.py" not in row.command]


@pytest.mark.parametrize("row", CNNLAB_ROWS, ids=lambda row: f"{row.model}-{row.recipe}")
def test_each_row_names_a_command_that_trains_its_model_and_recipe(row):
    argv = shlex.split(row.command.replace("--seed S", "--seed 0"))  # S: each seed
    if argv[:2] == ["python", "benchmarks/time_to_accuracy.py"]:  # trains the recipe's model
        recipe = get_recipe(argv[argv.index("--recipe") + 1])
        assert (README.parent / argv[1]).is_file() and recipe.model == row.model
    else:
        args = build_parser().parse_args(argv[1:])
        assert args.command == "train" and args.model == row.model
        recipe = get_recipe(args.recipe or row.recipe)  # lenet5's recipe is its default
    assert row.model in list_models() and recipe.name == row.recipe
    assert int(row.epochs) == recipe.settings["epochs"]


def test_unmeasured_rows_say_so_and_measured_rows_name_seeds():
    for row in CNNLAB_ROWS:
        if row.measured in (NOT_MEASURED, "running / not measured yet"):
            continue
        assert "seed" in row.measured and "%" in row.measured and row.machine != "-"
    assert any(row.measured == NOT_MEASURED for row in RESULTS if row.dataset == "ImageNet-1k")


def test_imagenet_cost_is_epochs_times_images_over_rate(monkeypatch):
    assert results_module._imagenet_cost("googlenet", 250).startswith(NOT_MEASURED)
    monkeypatch.setitem(results_module.IMAGENET_IMAGES_PER_SECOND, "vgg16", 1_281_167 / 3600)
    # one epoch takes exactly an hour at this rate
    assert results_module._imagenet_cost("vgg16", 74).startswith("est. 74 h on the 2-core")


def test_cnnlab_results_prints_every_row_and_its_command(capsys):
    assert main(["results"]) == 0
    out = capsys.readouterr().out
    for number, row in enumerate(RESULTS, start=1):
        assert f"{number:2d}. {row.command}" in out
