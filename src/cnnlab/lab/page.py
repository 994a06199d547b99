"""The lab's HTML: one page for the server and for the exported file.

The page is static HTML, CSS and a small script (``static/lab.js``) that draws what
``content.Lab`` computed. Served, it asks the server for feature maps, optimizer paths,
saliency and the landscape; exported, the same calls are answered from data written into the
file, so it works offline. Plotly draws the 3-D landscape and the loss-vs-step plot: its
``gl3d`` partial bundle (scatter, scatter3d, surface; 1.7 MB instead of the full 4.8 MB) is
shipped in ``static/`` and inlined into the export.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from cnnlab.lab.content import Lab, export_race_keys, race_key
from cnnlab.optim.surfaces import FUNCTIONS, get_function
from cnnlab.outputs import HTML_SUFFIXES, check_output

STATIC = files("cnnlab.lab") / "static"
PLOTLY = "plotly-gl3d.min.js"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnlab lab</title>
<link rel="icon" href="data:,">
<style>{css}</style>
</head><body>
<header><h1>cnnlab lab</h1><span id="model-label"></span><span id="status"></span></header>
<nav id="tabs"></nav>
<main id="views"></main>
<script>window.LAB = {data};</script>
{script}
{plotly}
</body></html>
"""


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _inline_script(code: str) -> str:
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


def render(data: dict[str, Any], *, inline: bool) -> str:
    """The page around ``data``; ``inline`` puts the scripts in the file (the export)."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    if inline:
        plotly, script = _inline_script(_static(PLOTLY)), _inline_script(_static("lab.js"))
    else:
        plotly = f'<script async src="static/{PLOTLY}"></script>'
        script = '<script src="static/lab.js"></script>'
    return _TEMPLATE.format(css=_static("lab.css"), plotly=plotly, data=payload, script=script)


def export_page(
    lab: Lab, out: str | Path, *, surfaces: list[str] | None = None, progress: bool = True
) -> Path:
    """Write the page with every answer precomputed: one file that works offline.

    The race holds paths for ``content.EXPORT_SLIDERS`` (from each surface's own start) on
    ``surfaces`` (default: all), saliency for the top-5 classes, feature maps for every layer
    and the loss landscape of a checkpoint.
    """
    out = check_output(out, HTML_SUFFIXES, "the page")
    data = lab.page_data()
    chosen = [get_function(s).name for s in surfaces] if surfaces else list(FUNCTIONS)
    data["race"]["surfaces"] = {n: data["race"]["surfaces"][n] for n in chosen}
    races = [(s, o, v) for s in chosen for o, v in export_race_keys(FUNCTIONS[s])]
    layers = []
    if data["network"] is not None:
        layers = list(
            dict.fromkeys(r["name"] for r in data["network"]["summary"]["rows"] if r["maps"])
        )
    precomputed: dict[str, Any] = {"race": {}, "features": {}, "saliency": {}}
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("precomputing the page", total=len(races) + len(layers) + 6)
        for surface, optimizer, values in races:
            precomputed["race"][race_key(surface, optimizer, values)] = lab.race(
                surface, optimizer, **values
            )
            bar.advance(task)
        for layer in layers:
            precomputed["features"][layer] = lab.features(layer)
            bar.advance(task)
        if data["saliency"]["available"]:
            top = lab.saliency()
            precomputed["saliency"]["top"] = top
            for entry in top["top5"]:
                precomputed["saliency"][str(entry["index"])] = lab.saliency(entry["index"])
                bar.advance(task)
        if data["landscape"]["available"]:
            precomputed["landscape"] = lab.compute_landscape()
        bar.advance(task)
    data["mode"] = "export"
    data["precomputed"] = precomputed
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, inline=True), encoding="utf-8")
    return out
