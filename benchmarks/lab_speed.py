"""How fast the lab page answers, in headless Chromium, against references from the same run.

    python benchmarks/lab_speed.py [CHECKPOINT] [--export lab.html]

Measures (a CIFAR ResNet-20 checkpoint with initial weights is written when none is given):
- first render: page request until the convolution view is drawn, against loading an empty
  page from the same server (the browser's own floor);
- convolution slider: a stride change until the output size is printed, against the same
  page doing nothing but reading that text (the event loop's floor);
- a race of all ten optimizers on Rosenbrock (the served page asks the server, which runs
  cnnlab's optimizers), against the same runs called directly in Python;
- the exported file's size and the time to write it.
The issue's budgets (3 s, 200 ms, 3 s) are printed beside the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnnlab.checkpoint import save_checkpoint
from cnnlab.lab import Lab, export_page
from cnnlab.lab.content import RACE_OPTIMIZERS
from cnnlab.lab.server import LabServer
from cnnlab.models import create_model


def resnet_checkpoint(folder: Path) -> Path:
    model = create_model("resnet20")
    state = {
        "model": model.state_dict(),
        "model_name": "resnet20",
        "model_kwargs": {},
        "config": {"model": "resnet20", "data": "cifar10", "data_dir": "/root/data"},
        "epoch": 0,
        "step": 0,
    }
    return save_checkpoint(state, folder / "resnet20.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("--export", help="also write the exported page here")
    parser.add_argument("--grid", type=int, default=11, help="landscape grid of the export")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from playwright.sync_api import sync_playwright

    checkpoint = args.checkpoint or str(resnet_checkpoint(Path(tempfile.mkdtemp())))
    began = time.perf_counter()
    lab = Lab(checkpoint, landscape_grid=args.grid)
    server = LabServer(lab)
    server.start_in_thread()
    startup = time.perf_counter() - began
    chromium = shutil.which("chromium") or sys.exit("needs chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server.url + "static/lab.css")  # warm the connection
        began = time.perf_counter()
        page.goto(server.url + "static/plotly-LICENSE.txt")
        empty = time.perf_counter() - began
        began = time.perf_counter()
        page.goto(server.url)
        page.wait_for_selector("#conv-outsize")
        render = time.perf_counter() - began
        slider = page.evaluate(
            """() => { const s = document.getElementById('conv-stride');
            const t0 = performance.now(); s.value = 2; s.dispatchEvent(new Event('input'));
            const text = document.getElementById('conv-outsize').textContent;
            return [performance.now() - t0, text]; }"""
        )
        floor = page.evaluate(
            """() => { const t0 = performance.now();
            const text = document.getElementById('conv-outsize').textContent;
            return performance.now() - t0; }"""
        )
        page.click("#tab-race")
        page.select_option("#race-surface", "rosenbrock")
        page.wait_for_function("window.labState.race.pending === 0", timeout=300_000)
        page.evaluate("window.labState.race.seconds = undefined")
        page.fill("#race-lr_scale", "1")  # a slider change: every optimizer again
        page.wait_for_function(
            "window.labState.race.seconds !== undefined", timeout=300_000, polling=20
        )
        race = page.evaluate("window.labState.race.seconds")
        browser.close()
    server.stop()
    began = time.perf_counter()
    for optimizer in RACE_OPTIMIZERS:
        lab.race("rosenbrock", optimizer, lr_scale=3.0)
    direct = time.perf_counter() - began
    print(f"checkpoint {checkpoint}; server ready in {startup:.2f} s")
    print(f"first render   {render:6.2f} s   empty page {empty:.3f} s   budget 3 s")
    print(
        f"conv slider    {slider[0]:6.1f} ms  reading the text {floor:.2f} ms   budget 200 ms"
        f"   (output {slider[1]})"
    )
    print(
        f"race, all 10   {race:6.2f} s   direct Python {direct:.2f} s   ratio "
        f"{race / direct:.2f}x   budget 3 s"
    )
    if args.export:
        began = time.perf_counter()
        out = export_page(lab, args.export, progress=False)
        took = time.perf_counter() - began
        size = out.stat().st_size / 1e6
        print(f"export         {size:6.2f} MB in {took:.0f} s (landscape {args.grid}x{args.grid})")


if __name__ == "__main__":
    main()
