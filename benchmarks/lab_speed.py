"""How fast the lab page answers, in headless Chromium, against references from the same run.

    python benchmarks/lab_speed.py [CHECKPOINT] [--export lab.html]
    python benchmarks/lab_speed.py --race-only

Measures (a CIFAR ResNet-20 checkpoint with initial weights is written when none is given):
- first render: page request until the convolution view is drawn, against loading an empty
  page from the same server (the browser's own floor);
- convolution slider: a stride change until the output size is printed, against the same
  page doing nothing but reading that text (the event loop's floor);
- a race of all ten optimizers on Rosenbrock (the served page asks the server, which runs
  cnnlab's optimizers), against the same runs called directly in Python;
- with ``--race-only`` (no model, no checkpoint, no browser): the server's answer to a fresh
  race and to one after a slider change (ten requests at once, as the page sends them), and
  the ten runs in Python now against stepping every step on autograd's gradient (the lab's
  runs before they stopped at fixed points and took closed-form gradients), both in this
  run, so a loaded machine slows both alike;
- the exported file's size and the time to write it.
The issue's budgets (3 s, 200 ms, 3 s) are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import torch

from cnnlab.checkpoint import save_checkpoint
from cnnlab.lab import Lab, export_page
from cnnlab.lab.content import RACE_OPTIMIZERS, _race_path, _tuned_lr
from cnnlab.lab.server import LabServer
from cnnlab.models import create_model
from cnnlab.optim.registry import create_optimizer, optimizer_entry
from cnnlab.optim.surfaces import get_function


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


def every_step(surface: str, optimizer: str, lr_scale: float) -> torch.Tensor:
    """The reference: every step taken, each on autograd's gradient (momentum 0.9, Adam's and
    RMSprop's defaults, as the page's sliders start)."""
    function = get_function(surface)
    entry = optimizer_entry(optimizer)
    lr = _tuned_lr(function, entry.name)
    settings = {} if lr is None else {"lr": lr * lr_scale}
    settings |= {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9}}.get(entry.name, {})
    settings |= {"adam": {"betas": (0.9, 0.999)}, "rmsprop": {"alpha": 0.999}}.get(entry.name, {})
    point = torch.tensor(function.start, dtype=torch.float64, requires_grad=True)
    optim = create_optimizer(entry.name, [point], **settings)

    def closure() -> torch.Tensor:
        optim.zero_grad()
        loss = function(point)
        loss.backward()
        return loss

    points = [point.detach().clone()]
    for _ in range(function.steps):
        if entry.needs_closure:
            optim.step(closure)
        else:
            closure()
            optim.step()
        points.append(point.detach().clone())
    return torch.stack(points)


def served_race(url: str, surface: str, **sliders: float) -> float:
    """Seconds until the server has answered all ten, asked at once as the page asks them."""
    from concurrent.futures import ThreadPoolExecutor

    def ask(optimizer: str) -> int:
        query = urlencode({"surface": surface, "optimizer": optimizer, **sliders})
        with urllib.request.urlopen(f"{url}api/race?{query}", timeout=300) as answer:
            return len(json.load(answer)["x"])

    began = time.perf_counter()
    with ThreadPoolExecutor(len(RACE_OPTIMIZERS)) as pool:
        lengths = list(pool.map(ask, RACE_OPTIMIZERS))
    assert lengths == [get_function(surface).steps + 1] * len(RACE_OPTIMIZERS)
    return time.perf_counter() - began


def race_only() -> None:
    """The race's figures alone (no browser: ten requests at once, as the page sends them),
    against references timed in this run."""
    server = LabServer(Lab())
    server.start_in_thread()
    fresh = served_race(server.url, "rosenbrock", lr_scale=1.0)  # all ten computed
    slider = served_race(server.url, "rosenbrock", lr_scale=0.3)  # the first-order six again
    server.stop()
    lab = Lab()
    _race_path.cache_clear()
    began = time.perf_counter()
    for optimizer in RACE_OPTIMIZERS:
        lab.race("rosenbrock", optimizer, lr_scale=0.3)
    now = time.perf_counter() - began
    began = time.perf_counter()
    for optimizer in RACE_OPTIMIZERS:
        every_step("rosenbrock", optimizer, 0.3)
    before = time.perf_counter() - began
    print(f"race, slider   {slider:6.2f} s   (lr x 0.3 after lr x 1: answered by the server)")
    print(f"race, fresh    {fresh:6.2f} s   (all ten computed)   budget 3 s for either")
    print(
        f"ten runs in Python, fresh: {now:.2f} s; every step on autograd's gradient: "
        f"{before:.2f} s; ratio {before / now:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("--export", help="also write the exported page here")
    parser.add_argument("--grid", type=int, default=11, help="landscape grid of the export")
    parser.add_argument("--race-only", action="store_true", help="time the optimizer race only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.race_only:
        race_only()
        return
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
    _race_path.cache_clear()  # the page's answers are kept: time the runs themselves
    began = time.perf_counter()
    for optimizer in RACE_OPTIMIZERS:
        lab.race("rosenbrock", optimizer, lr_scale=0.3)
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
