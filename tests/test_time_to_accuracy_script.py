"""benchmarks/time_to_accuracy.py: the reference's figures read from what it prints, the round's
table (a mean row even where the reference measured nothing), and its bad-input lines."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def script(load_benchmark):
    return load_benchmark("time_to_accuracy")


def fake_airbench(tmp_path: Path) -> Path:
    """A stand-in printing airbench94_cpu's lines: three epochs, then the TTA line."""
    path = tmp_path / "fake_airbench.py"
    path.write_text(
        "print('data: 50000 train, 10000 test, decoded/loaded in 9s; threads 2, fp32')\n"
        "print('epoch 1: train seconds so far 100, 480 img/s, test acc 0.8512')\n"
        "print('epoch 2: train seconds so far 205, 470 img/s, test acc 0.9031')\n"
        "print('epoch 3: train seconds so far 310, 475 img/s, test acc 0.9102')\n"
        "print('final: tta test acc 0.9205, total seconds 350 (excl. data decode)')\n"
    )
    return path


def test_airbench_figures_are_read_from_its_lines(script, tmp_path, capsys):
    args = script.parse_args(
        ["--data-dir", "DATA", "--reference", "airbench", "--threads", "2", "--thresholds", "90,92"]
        + ["--airbench", str(fake_airbench(tmp_path))]
    )
    result = script.run_airbench(args, seed=1, fp32=True)
    assert "--seed 1 --threads 2 --fp32" in capsys.readouterr().out
    assert result["top1"] == pytest.approx(91.02) and result["top1_tta"] == pytest.approx(92.05)
    assert result["epochs"] == 3 and result["train"] == 350
    # 90% first at the end of epoch 2 (205 s); 92% only with the TTA, at the end (350 s)
    assert result["t90"] == 205 and result["t92"] == 350
    assert result["images_per_s"] is None and result["setup"] is None


def test_round_table_has_a_mean_row_where_the_reference_measured_nothing(script, capsys):
    rows = [
        dict(seed=s, top1=89.0, top1_tta=90.0, epochs=10, images_per_s=None, setup=None)
        | dict(train=t, wall=t + 20.0, run_dir="", t90=t)
        for s, t in enumerate([1160.0, 1150.0, 1149.0])
    ]
    script.print_table("airbench94_cpu", rows, [90.0])
    mean_row = capsys.readouterr().out.splitlines()[-1]
    assert mean_row.startswith("  mean")
    width, body = script.WIDTH, mean_row[8:]  # after "  mean  "
    cells = [body[i : i + width].strip() for i in range(0, len(body), width)]
    # images/s and setup: not measured; train: mean 1153, sample standard deviation
    # sqrt((7² + 3² + 4²) / 2) = sqrt(37) = 6.08; wall: the same, 20 s later
    assert cells == [
        "89.00 ± 0.00",
        "90.00 ± 0.00",
        "10.00 ± 0.00",
        "-",
        "-",
        "1153.00 ± 6.08",
        "1173.00 ± 6.08",
        "1153.00 ± 6.08",
    ]


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--reference", "airbench"], "--reference airbench needs --data-dir"),
        (["--seeds", "0,one"], "--seeds and --thresholds take comma-separated numbers"),
        (["--runs", "."], "is not a finished cnnlab run"),
        (["--record", "r.json", "--runs", "."], "leave it out with --runs"),
        (["--whitening-bias-epochs", "-1"], "--whitening-bias-epochs must be >= 0"),
        (["--batch-size", "0"], "batch"),
        (["--recipe", "speedrun"], "speedrun"),
        (["--augment", "translate2+spin"], "join parts of none, crop, flip, translateN"),
        (["--augment", "jitter0"], "jitterP takes a percentage from 1 to 99"),
        (
            ["--reference", "airbench", "--data-dir", "D", "--airbench", "no/airbench94_cpu.py"],
            "no/airbench94_cpu.py: no such file; give the path of airbench94_cpu.py",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(script, argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        script.parse_args(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err.strip().splitlines()[-1]


def row(seed: int, train: float, top1_tta: float) -> dict:
    """A finished seed's figures, as train_seed and run_airbench return them."""
    figures = dict(seed=seed, top1=89.0, top1_tta=top1_tta, epochs=8, images_per_s=None)
    return figures | dict(setup=None, train=train, wall=train, run_dir="", t90=train)


@pytest.fixture
def round_without_data(script, monkeypatch, tmp_path):
    """main() with no dataset to decode; training a seed on either side is recorded in
    ``trained`` (cnnlab 100 s and 90.5%, airbench94_cpu 200 s and 90.0%)."""
    trained = []
    monkeypatch.setattr(script, "load_dataset", lambda *a, **k: Namespace(train=[], test=[]))

    def train_seed(args, seed, out, tta):
        trained.append(("cnnlab", seed))
        return row(seed, 100.0, 90.5)

    def run_airbench(args, seed, fp32):
        trained.append(("airbench", seed))
        return row(seed, 200.0, 90.0)

    monkeypatch.setattr(script, "train_seed", train_seed)
    monkeypatch.setattr(script, "run_airbench", run_airbench)
    argv = ["--data-dir", "D", "--reference", "airbench", "--thresholds", "90"]
    argv += ["--airbench", str(fake_airbench(tmp_path)), "--out", str(tmp_path / "runs")]
    return argv + ["--record", str(tmp_path / "round.json")], trained


def test_a_round_is_finished_over_several_sittings_with_record(script, round_without_data, capsys):
    argv, trained = round_without_data
    script.main([*argv, "--seeds", "0"])  # the first sitting: seed 0
    script.main([*argv, "--seeds", "0,1"])  # the second: seed 1 only, seed 0 read back
    assert trained == [("cnnlab", 0), ("airbench", 0), ("cnnlab", 1), ("airbench", 1)]
    last = capsys.readouterr().out.split("date:")[-1]
    assert "seed 0: measured before" in last
    # both seeds in the table: cnnlab 100 s against 200 s, 90.5% against 90.0%
    assert "ratio cnnlab / airbench94_cpu: 0.500" in last and "airbench94_cpu: +0.50 pp" in last


def test_a_record_of_another_round_stops_with_one_line(script, round_without_data, capsys):
    argv, trained = round_without_data
    script.main([*argv, "--seeds", "0"])
    record = Path(argv[-1])
    record.write_text(record.read_text().replace('"speedrun_cifar"', '"resnet_cifar_fast"'))
    with pytest.raises(SystemExit) as stopped:
        script.main([*argv, "--seeds", "0,1"])
    assert stopped.value.code == 2 and len(trained) == 2  # nothing trained again
    assert "holds seeds of" in capsys.readouterr().err.strip().splitlines()[-1]
    record.write_text("not json")
    with pytest.raises(SystemExit) as stopped:
        script.main([*argv, "--seeds", "0"])
    assert stopped.value.code == 2


def test_a_variants_round_does_not_mix_with_the_recipes_record(script, round_without_data, capsys):
    argv, trained = round_without_data
    script.main([*argv, "--seeds", "0"])
    variant = [*argv, "--small-crop", "28", "--small-crop-epochs", "3", "--seeds", "0,1"]
    with pytest.raises(SystemExit) as stopped:
        script.main(variant)
    assert stopped.value.code == 2 and len(trained) == 2  # nothing trained again
    assert "'small_crop': 28" in capsys.readouterr().err.strip().splitlines()[-1]


def test_variants_reach_the_processes_and_their_own_record(
    script, round_without_data, monkeypatch, capsys
):
    argv, trained = round_without_data
    script.main([*argv, "--seeds", "0"])
    with pytest.raises(SystemExit) as stopped:  # 0 epochs is a variant too, not "unset"
        script.main([*argv, "--whitening-bias-epochs", "0", "--seeds", "0"])
    assert stopped.value.code == 2 and len(trained) == 2
    assert "'whitening_bias_epochs': 0" in capsys.readouterr().err.strip().splitlines()[-1]

    commands = []

    def run(command, **kwargs):
        commands.append(command)
        raise RuntimeError("stop after the command")  # nothing trains in this test

    monkeypatch.setattr(script.subprocess, "run", run)
    args = script.parse_args(
        ["--whitening-bias-epochs", "1", "--augment", "translate2+jitter", "--processes", "2"]
    )
    config = script.resolve_config(
        "speedrun_cifar_net", "speedrun_cifar", **script.recipe_changes(args)
    )
    with pytest.raises(RuntimeError, match="stop after the command"):
        script.train_processes(args, config, Path("out"))
    assert commands[0][-4:] == [
        "--whitening-bias-epochs", "1", "--augment", "translate2+jitter",
    ]  # fmt: skip
    assert script.recipe_changes(args)["augment"] == "translate2+jitter"  # its own record


def test_a_cnnlab_error_mid_round_is_one_line_and_keeps_the_record(
    script, round_without_data, monkeypatch, capsys
):
    from cnnlab.errors import ConfigError

    argv, trained = round_without_data
    script.main([*argv, "--seeds", "0"])

    def train_seed(args, seed, out, tta):
        raise ConfigError("--small-crop 40 does not fit the 32x32 images; pick a size from 1 to 32")

    monkeypatch.setattr(script, "train_seed", train_seed)
    with pytest.raises(SystemExit) as stopped:
        script.main([*argv, "--seeds", "0,1"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --small-crop 40 does not fit the 32x32 images; pick a size from 1 to 32"
    ]
    assert "0" in json.loads(Path(argv[-1]).read_text())["seeds"]  # seed 0 still recorded


def test_a_failing_reference_is_one_line_and_says_where_cnnlabs_run_is(
    script, monkeypatch, tmp_path, capsys
):
    """airbench94_cpu stopping after cnnlab's seed trained (e.g. no data it can read): one line
    with its own last words and where cnnlab's run was left, not a traceback."""
    failing = tmp_path / "failing_airbench.py"
    failing.write_text("import sys\nsys.exit('airbench94_cpu: no train/ folder in D')\n")
    monkeypatch.setattr(script, "load_dataset", lambda *a, **k: Namespace(train=[], test=[]))
    monkeypatch.setattr(script, "train_seed", lambda args, seed, out, tta: row(seed, 100.0, 90.5))
    argv = ["--data-dir", "D", "--reference", "airbench", "--airbench", str(failing)]
    with pytest.raises(SystemExit) as stopped:
        script.main([*argv, "--out", str(tmp_path / "runs"), "--seeds", "0"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: airbench94_cpu.py stopped with exit status 1 (airbench94_cpu: no train/ folder "
        f"in D); cnnlab's run of seed 0 is kept in {tmp_path / 'runs' / 'seed0'}"
    ]


def test_failing_training_processes_are_one_line_and_say_where_the_run_is(
    script, monkeypatch, capsys
):
    """torchrun's processes stopping (a cnnlab error they printed, or a crash): one line with
    the exit status and the run directory, not a CalledProcessError traceback."""
    monkeypatch.setattr(script.subprocess, "run", lambda command, **kwargs: Namespace(returncode=2))
    args = script.parse_args(["--processes", "2"])
    config = script.resolve_config("speedrun_cifar_net", "speedrun_cifar", seed=1)
    with pytest.raises(SystemExit) as stopped:
        script.train_processes(args, config, Path("out"))
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: the 2 training processes of seed 1 stopped with exit status 2 (their lines "
        "above say why); the run is kept in out"
    ]
