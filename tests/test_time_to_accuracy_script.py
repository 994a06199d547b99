"""benchmarks/time_to_accuracy.py: the reference's figures read from what it prints, the round's
table (a mean row even where the reference measured nothing), and its bad-input lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_accuracy.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("time_to_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(script, argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        script.parse_args(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err.strip().splitlines()[-1]
