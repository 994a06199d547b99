"""The HTML run report: self-contained, and shown correctly by a real headless Chromium."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread
from synthetic_runs import EPOCHS, write_run

from cnnlab.errors import CnnlabError
from cnnlab.viz.curves import plot_runs
from cnnlab.viz.report import CURVES_WIDTH, build_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _images(page: str) -> dict[str, np.ndarray]:
    """The page's embedded PNGs by element id, decoded."""
    found = re.findall(r'<img id="(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', page)
    return {name: imread(io.BytesIO(base64.b64decode(data)), format="png") for name, data in found}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("runs") / "lenet-overfit", "overfitting")
    return run, build_report(run)


def test_page_is_self_contained_and_holds_every_section(report):
    run, path = report
    assert path == run / "report.html"
    page = path.read_text()
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page) + re.findall(r"url\(", page)
    assert references and all(ref.startswith("data:image/png;base64,") for ref in references)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for section in (
        "Diagnosis",
        "Metrics",
        "Configuration",
        "First-layer filters",
        "Model summary",
    ):
        assert f"<h2>{section}</h2>" in page
    assert "overfitting" in page and "epoch 4" in page  # the diagnosis of this history
    metrics_table = page.split("<table id='metrics'>")[1].split("</table>")[0]
    assert metrics_table.count("<tr>") == EPOCHS + 1
    assert "lenet5_modern" in page and "Conv2d" in page  # the model summary


def test_embedded_curves_are_the_runs_curves_and_filters_depend_on_the_weights(tmp_path, report):
    run, path = report
    images = _images(path.read_text())
    assert set(images) == {"curves", "filters"}
    np.testing.assert_array_equal(images["curves"], imread(plot_runs([run], tmp_path / "c.png")))
    other = write_run(tmp_path / "other-seed", "overfitting", seed=1)
    other_filters = _images(build_report(other).read_text())["filters"]
    assert images["filters"].shape == other_filters.shape
    assert not np.array_equal(images["filters"], other_filters)


def test_missing_run_directory_is_reported(tmp_path):
    with pytest.raises(CnnlabError, match="no run directory"):
        build_report(tmp_path / "absent")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the report test needs a headless Chromium: install it with "
            "`apt-get install -y chromium` (CI installs it)"
        )
    return found


def _screenshot(html_path, png_path, profile) -> str:
    """Load the page in headless Chromium, screenshot it; returns the browser's log."""
    result = subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png_path}",
            "--window-size=1200,2000",
            html_path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png_path.is_file(), result.stderr[-2000:]
    return result.stderr


def _console_messages(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_chromium_shows_the_curves_with_no_console_errors(tmp_path, report):
    _, path = report
    log = _screenshot(path, tmp_path / "report.png", tmp_path / "profile")
    assert _console_messages(log) == []
    screen = imread(tmp_path / "report.png")[..., :3]
    assert screen.shape[:2] == (2000, 1200)
    # the curves image sits under the title at CURVES_WIDTH css pixels, from x=24, y~70
    curves = screen[90:430, 40 : 24 + CURVES_WIDTH - 20]
    assert (curves < 0.9).any(axis=-1).mean() > 0.02  # lines, axes and text, not blank
    assert curves.std() > 0.05
    assert screen[:60].std() > 0.01  # the title is rendered above it


def test_the_console_check_catches_a_broken_page(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>missingFunction();</script></body></html>")
    log = _screenshot(broken, tmp_path / "broken.png", tmp_path / "profile")
    assert any("missingFunction" in line for line in _console_messages(log))
