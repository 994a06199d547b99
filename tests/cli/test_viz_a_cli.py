"""`cnnlab plot`, `diagnose`, `lr-find`, `compare` and `report` as a user runs them.

Every command runs in-process through the entry point (``cli.main``), output captured.
"""

import json
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from cnnlab.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viz"))
from synthetic_runs import write_run  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return write_run(root / "plain", "overfitting"), write_run(root / "residual", "healthy")


def test_plot_overlays_runs_and_diagnoses_each(runs, tmp_path, cnnlab):
    out = tmp_path / "both.png"
    result = cnnlab("plot", *runs, "--out", out)
    assert result.returncode == 0, result.stderr
    assert imread(out).shape[:2] == (450, 1300)
    assert "diagnosis of plain:\n  - overfitting" in result.stdout
    assert "diagnosis of residual:\n  - healthy" in result.stdout


def test_report_writes_a_self_contained_page(runs, tmp_path, cnnlab):
    out = tmp_path / "report.html"
    result = cnnlab("report", runs[1], "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "https://" not in page


def test_lr_find_suggests_a_rate_and_plots_the_sweep(tmp_path, cnnlab):
    out = tmp_path / "lr.png"
    result = cnnlab(
        "lr-find",
        "lenet5_modern",
        "--data",
        "digits",
        "--steps",
        "20",
        "--batch-size",
        "16",
        "--start-lr",
        "1e-4",
        "--end-lr",
        "10",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("suggested lr"))
    assert 1e-4 <= float(line.rsplit(":", 1)[1]) <= 10
    assert imread(out).shape[:2] == (500, 800)


def test_a_mistake_gives_one_line_and_status_2(tmp_path, cnnlab):
    result = cnnlab("plot", "no-such-run", cwd=tmp_path)
    assert result.returncode == 2
    assert "no metrics.csv in no-such-run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_diagnose_prints_json_findings(runs, capsys):
    assert main(["diagnose", str(runs[0]), "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [f["kind"] for f in findings] == ["overfitting"]


def test_compare_with_results_and_runs(runs, tmp_path, capsys):
    results = tmp_path / "cifar.csv"
    results.write_text("model,top1,top5\nresnet20,91.25,99.7\n")
    out = tmp_path / "compare.png"
    code = main(
        [
            "compare",
            "resnet20",
            "--results",
            str(results),
            "--runs",
            str(runs[1]),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "91.25" in printed and "residual" in printed
    assert imread(out).shape[:2] == (650, 1100)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "resnet56"], "no accuracy for resnet56"),
        (["lr-find", "lenet6", "--data", "digits"], "unknown model 'lenet6'"),
        (["report", "no-such-run"], "no run directory at no-such-run"),
    ],
)
def test_other_mistakes_are_one_line_errors(args, message, capsys):
    assert main(args) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
