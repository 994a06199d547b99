"""The lab page in a real headless Chromium (Debian's, driven by Playwright), served and exported.

Each check is what a learner does: move a slider, click a layer, start a race, open the
landscape. Numbers the page prints are compared with torch's. The browser may only talk to
127.0.0.1 (served) or nothing at all (exported). ``CNNLAB_LAB_SCREENSHOTS=DIR`` keeps a
screenshot of every view there (the README's pictures are made so).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torch.nn.functional as F

from cnnlab.lab import export_page
from cnnlab.lab.server import LabServer

CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
CHOSEN = ["sgd", "adam", "newton", "bfgs"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("the lab tests need a headless Chromium: `apt-get install -y chromium`")
    return found


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the lab tests drive Chromium with Playwright: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with its console errors, uncaught exceptions and every URL it requested."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        self.page.wait_for_selector("#conv-outsize")

    def hosts(self) -> set[str]:
        return {urlparse(u).hostname or urlparse(u).scheme for u in self.requests}

    def screenshot(self, view: str) -> None:
        folder = os.environ.get("CNNLAB_LAB_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"lab-{view}.png"))


@pytest.fixture(scope="module")
def served(browser, lab):
    server = LabServer(lab)
    server.start_in_thread()
    watched = Watched(browser, server.url)
    yield watched
    watched.page.close()
    server.stop()


@pytest.fixture(scope="module")
def exported(browser, lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "lab.html"
    export_page(lab, out, surfaces=["ravine"], progress=False)
    watched = Watched(browser, out.resolve().as_uri())
    yield watched
    watched.page.close()


def _torch_output_size(side: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    weights = torch.zeros(1, 1, kernel, kernel)
    out = F.conv2d(torch.zeros(1, 1, side, side), weights, None, stride, padding, dilation)
    return out.shape[-1]


def check_stride_slider(watched: Watched) -> None:
    page = watched.page
    page.click("#tab-conv")
    page.select_option("#conv-input", index=0)  # the 16x16 digit
    page.select_option("#conv-kernel", index=0)  # Sobel, 3x3
    for stride, padding, dilation in ((1, 0, 1), (2, 0, 1), (3, 1, 1), (2, 2, 2), (4, 0, 3)):
        page.fill("#conv-padding", str(padding))
        page.fill("#conv-dilation", str(dilation))
        page.fill("#conv-stride", str(stride))
        side = _torch_output_size(16, 3, stride, padding, dilation)
        assert page.inner_text("#conv-outsize") == f"{side} × {side}"
        tiles = (16 - (dilation * 2 + 1) + 2 * padding) % stride == 0
        assert ("does not tile" in page.inner_text("#conv-warning")) == (not tiles)
    page.click("#conv-step")
    assert page.inner_text("#conv-terms").startswith("out[0, 1] = ")


def check_layer_click(watched: Watched, lab) -> None:
    page = watched.page
    page.click("#tab-network")
    convs = [n for n, m in lab.loaded.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    layer = convs[0]
    captured = {}
    module = dict(lab.loaded.model.named_modules())[layer]
    handle = module.register_forward_hook(lambda m, i, o: captured.update(shape=o.shape[1:]))
    with torch.no_grad():
        lab.loaded.model(lab.batch)
    handle.remove()
    channels, height, width = captured["shape"]
    page.click(f'#net-table tr[data-name="{layer}"]')
    page.wait_for_selector(f'#net-maps[data-layer="{layer}"]')
    assert page.inner_text("#net-maps-shape") == f"{layer}: {channels} × {height} × {width}"
    sizes = page.eval_on_selector_all("#net-maps canvas", "cs => cs.map(c => [c.width, c.height])")
    assert sizes == [[width, height]] * min(channels, 16)


def check_race(watched: Watched) -> None:
    page = watched.page
    page.click("#tab-race")
    page.select_option("#race-surface", "ravine")
    for box in page.query_selector_all("#race-optimizers input"):
        box.set_checked(box.get_attribute("value") in CHOSEN)
    page.click("#race-go")
    page.wait_for_function(  # a busy machine: the first race of all ten may still run
        f"document.getElementById('race-map').dataset.drawn === {','.join(CHOSEN)!r}",
        timeout=180_000,
    )
    page.wait_for_function(
        f"(document.getElementById('race-loss').data || []).length === {len(CHOSEN)}"
    )
    traces = page.evaluate("document.getElementById('race-loss').data.map(t => t.name)")
    assert traces == CHOSEN
    rows = page.eval_on_selector_all("#race-table tr[data-optimizer]", "rs => rs.length")
    assert rows == len(CHOSEN)


def check_landscape(watched: Watched) -> None:
    page = watched.page
    page.click("#tab-landscape")
    if not page.is_disabled("#land-go"):
        page.click("#land-go")
    page.wait_for_function("window.labState.landscape.rendered === true", timeout=120_000)
    kind = page.evaluate("document.getElementById('land-3d')._fullData[0].type")
    assert kind == "surface"
    assert page.eval_on_selector_all("#land-3d canvas", "cs => cs.length") >= 1
    assert page.get_attribute("#land-contour", "src").startswith("data:image/png")


def check_saliency(watched: Watched, lab) -> None:
    page = watched.page
    page.click("#tab-saliency")
    page.wait_for_function("window.labState.saliency.target !== undefined")
    assert page.eval_on_selector_all("#sal-top5 li", "items => items.length") == 5
    relu = any(isinstance(m, torch.nn.ReLU) for m in lab.loaded.model.modules())
    maps = ("gradient", "occlusion") + (("guided", "deconvnet") if relu else ())
    for key in maps:
        assert page.get_attribute(f"#sal-{key}", "src").startswith("data:image/png")
    assert ("has none" in page.inner_text("#sal-skipped")) == (not relu)


def test_served_page(served, lab):
    check_stride_slider(served)
    served.screenshot("convolution")
    check_layer_click(served, lab)
    served.screenshot("network")
    check_race(served)
    served.screenshot("race")
    check_landscape(served)
    served.screenshot("landscape")
    check_saliency(served, lab)
    served.screenshot("saliency")
    assert served.errors == []
    assert served.hosts() == {"127.0.0.1"}


def test_race_restarts_from_a_clicked_point(served):
    page = served.page
    page.click("#tab-race")
    page.select_option("#race-surface", "ravine")
    box = page.locator("#race-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
    page.wait_for_function("window.labState.race.pending === 0", timeout=180_000)
    start = page.evaluate("Object.values(window.labState.race.paths)[0]")
    x = -6.5 + 0.75 * 8.5  # the ravine's xlim is (-6.5, 2), ylim (-5, 3)
    y = 3.0 - 0.25 * 8.0
    assert start["x"][0] == pytest.approx(x, abs=0.05)
    assert start["y"][0] == pytest.approx(y, abs=0.05)
    assert served.errors == []


def test_exported_file(exported, lab):
    check_stride_slider(exported)
    check_layer_click(exported, lab)
    check_race(exported)
    check_landscape(exported)
    check_saliency(exported, lab)
    assert exported.errors == []
    assert exported.hosts() <= {"file", "data"}
