"""`cnnlab summary` and `cnnlab models` as a user runs them (the entry point, in-process)."""

import json

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.cli import main


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_summary_vgg16_prints_the_lecture_rows_and_totals(cnnlab):
    result = cnnlab("summary", "vgg16")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # seeds/001 VGG-16 table: first conv 224×224×64 = 3,211,264 values, 1,728 weights + 64
    # biases; first fc 7·7·512·4096 weights + 4096 biases; 138,357,544 parameters in all.
    assert "64×224×224" in out and "3,211,264" in out and "1,792" in out
    assert "102,764,544" in out
    assert "138,357,544" in out and "FLOPs (2 × MACs)" in out
    assert "VGG-16 table" in " ".join(out.split())


def test_summary_of_a_spec_as_json_matches_the_hand_built_network(cnnlab):
    spec = "[conv6k5-pool2]x2-conv120k5-fc84-fc10"
    result = cnnlab(
        "summary", spec, "--input", "1x32x32", "--json", "--batch-size", "2", "--all-activations"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    reference = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 6, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(6, 120, 5), nn.ReLU(), nn.Flatten(), nn.Linear(120, 84),
        nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    assert data["total_params"] == sum(p.numel() for p in reference.parameters())
    x = torch.zeros(2, 1, 32, 32)
    outputs = [x.numel()]
    with FlopCounterMode(display=False) as counter:
        for layer in reference:
            x = layer(x)
            outputs.append(x.numel())
    assert data["flops"] == counter.get_total_flops()
    assert data["activation_elements"] == sum(outputs)  # --all-activations: every output
    assert data["batch_size"] == 2 and data["input_size"] == [1, 32, 32]
    assert [row["output_shape"] for row in data["rows"][:4]] == [
        [1, 32, 32],
        [6, 28, 28],
        [6, 28, 28],
        [6, 14, 14],
    ]


def test_summary_depth_aggregates_in_the_command(capsys):
    assert main(["summary", "resnet18", "--depth", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["name"] for row in rows][5:9] == ["layer1", "layer2", "layer3", "layer4"]
    assert rows[5]["output_shape"] == [64, 56, 56]


def test_too_small_input_is_one_line_with_exit_2(cnnlab):
    too_small = _one_line_error(cnnlab("summary", "vgg16", "--input", "3x16x16"))
    assert "layer 'features.30'" in too_small and "would output 512×0×0" in too_small
    assert "smallest input that works is 3×32×32" in too_small  # torchvision's min_size


def test_bad_input_size_and_bad_spec_are_one_line_with_exit_2(capsys):
    # The same path as the command line (main -> handler -> one printed line), in process.
    assert main(["summary", "vgg16", "--input", "224by224"]) == 2
    bad_input = capsys.readouterr().err.strip()
    assert len(bad_input.splitlines()) == 1 and "3x224x224" in bad_input
    assert main(["summary", "conv6k5-pol2", "--input", "1x32x32"]) == 2
    bad_spec = capsys.readouterr().err.strip()
    assert len(bad_spec.splitlines()) == 1
    assert "position 9" in bad_spec and "conv6k5-^pol2" in bad_spec


def test_models_lists_the_vgg_family_with_parameters_and_macs(cnnlab):
    result = cnnlab("models", "vgg*")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "vgg16 " in line]
    assert len(rows) == 1
    # torchvision VGG16_Weights: 138,357,544 parameters, 15.47 GFLOPS (= GMACs) at 224×224.
    assert "138,357,544" in rows[0] and "15.47 G" in rows[0] and "3×224×224" in rows[0]
    assert "2014" in rows[0]
    assert "resnet" not in result.stdout


def test_models_pattern_that_matches_nothing(capsys):
    assert main(["models", "vgx*"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "vgx*" in error


def test_summary_help_states_the_convention_and_grammar(cnnlab):
    result = cnnlab("summary", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "FLOPs = 2 x MACs" in text and "bias not counted" in text
    assert "[ ... ]xN" in text and "conv<C>" in text
