"""One self-contained HTML page per run: curves, diagnosis, metrics, config, filters, summary.

The page is meant to be mailed, archived or opened offline, so it depends on nothing outside
itself: the pictures are PNGs embedded as base64 ``data:`` URIs, the style is inline, and there
is no script and no external font, stylesheet or image. The curves come first, at a fixed
size, because they are what one looks at first.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from datetime import datetime
from pathlib import Path

from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.outputs import HTML_SUFFIXES, check_output
from cnnlab.run_metrics import COLUMNS, EMA_COLUMN, FORMATS

CURVES_WIDTH = 1100  # CSS pixels; the curves image is shown at this width at the top
_STYLE = """
body { font-family: sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 24px 0 8px 0; border-bottom: 1px solid #ccc; }
.sub { color: #666; font-size: 13px; margin: 0 0 8px 0; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
li.problem { color: #a00; }
img { display: block; }
"""


def png_data_uri(figure: Figure, dpi: int | None = None) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi or figure.dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of the run in ``run_dir``; the same as ``cnnlab report``.

    Args:
        run_dir: a run directory written by ``cnnlab train``.
        out: the HTML file (default ``RUN_DIR/report.html``).

    Returns:
        The path written.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CnnlabError(f"no run directory at {run_dir}; pass one written by `cnnlab train`")
    out = check_output(out or run_dir / "report.html", HTML_SUFFIXES, "the report")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(run_dir), encoding="utf-8")
    return out


def report_html(run_dir: str | Path) -> str:
    """The report page of ``run_dir`` as one HTML string."""
    from cnnlab.viz.curves import curves_figure, read_run
    from cnnlab.viz.diagnosis import diagnose

    run_dir = Path(run_dir)
    history = read_run(run_dir)
    diagnosis = diagnose(history.rows)
    model, checkpoint = _trained_model(run_dir)
    config = (checkpoint or {}).get("config") or _config_yaml(run_dir)
    curves = curves_figure([history])
    height = round(CURVES_WIDTH * curves.get_figheight() / curves.get_figwidth())
    title = html.escape(f"cnnlab run {run_dir.resolve().name}")
    subtitle = html.escape(
        f"{config.get('model', '?')} on {config.get('data', '?')}, {len(history.rows)} epoch(s); "
        f"report written {datetime.now():%Y-%m-%d %H:%M}"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1><p class='sub'>{subtitle}</p>",
        f'<img id="curves" alt="training curves" width="{CURVES_WIDTH}" height="{height}" '
        f'src="{png_data_uri(curves)}">',
        "<h2>Diagnosis</h2>",
        _diagnosis_html(diagnosis),
        "<h2>Metrics</h2>",
        _metrics_html(history.rows),
        "<h2>Configuration</h2>",
        _config_html(config),
        "<h2>First-layer filters</h2>",
        _filters_html(model, run_dir),
        "<h2>Model summary</h2>",
        _summary_html(model, checkpoint, config),
        "</body></html>",
    ]
    return "\n".join(parts)


def _trained_model(run_dir: Path):
    """``(model, checkpoint)`` of the run's best epoch (else its latest), or ``(None, None)``."""
    from cnnlab.checkpoint import model_from_checkpoint

    for name in ("best.pt", "checkpoint.pt"):
        if (run_dir / name).is_file():
            return model_from_checkpoint(run_dir / name)
    return None, None


def _config_yaml(run_dir: Path) -> dict:
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _diagnosis_html(diagnosis) -> str:
    items = [
        f"<li class='{'problem' if f.is_problem else 'ok'}'><b>{html.escape(f.kind)}</b>: "
        f"{html.escape(f.message)} <span class='sub'>({html.escape(f.evidence)})</span></li>"
        for f in diagnosis.findings
    ]
    return f"<ul id='diagnosis'>{''.join(items)}</ul>"


def _table(header: list[str], rows: list[list[str]], table_id: str, left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned."""

    def cell(tag: str, index: int, text: str) -> str:
        align = " class='l'" if index < left else ""
        return f"<{tag}{align}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", i, text) for i, text in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, text) for i, text in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table id='{table_id}'><tr>{head}</tr>{body}</table>"


def _metrics_html(rows: list[dict[str, float]]) -> str:
    columns = [key for key in (*COLUMNS, EMA_COLUMN) if any(key in row for row in rows)]
    body = [
        [FORMATS[key].format(row[key]) if key in row else "" for key in columns] for row in rows
    ]
    return _table(columns, body, "metrics", left=0)


def _config_html(config: dict) -> str:
    rows = [[str(key), _plain(value)] for key, value in config.items()]
    return _table(["setting", "value"], rows, "config", left=2)


def _plain(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def _filters_html(model, run_dir: Path) -> str:
    if model is None:
        return f"<p>no checkpoint in {html.escape(str(run_dir))}</p>"
    from cnnlab.viz.filters import filter_grid_figure

    try:
        figure = filter_grid_figure(model)
    except CnnlabError as error:  # e.g. a model without a convolution
        return f"<p>{html.escape(str(error))}</p>"
    return f'<img id="filters" alt="first-layer filters" src="{png_data_uri(figure)}">'


def _summary_html(model, checkpoint: dict | None, config: dict) -> str:
    if model is None:
        return "<p>no checkpoint: the model's arguments are unknown</p>"
    from cnnlab.geometry.units import dims
    from cnnlab.sizing import GeometryWarning, summary

    size = config.get("input_size") or getattr(model, "default_input_size", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)
        sized = summary(model, input_size=tuple(size) if size else None)
    rows = [
        [
            row.name,
            row.type,
            dims(row.output_shape),
            f"{row.params:,}" if row.params else "",
            f"{row.macs:,}" if row.macs else "",
            f"{row.activations:,}",
            dims(row.receptive_field, square=True),
        ]
        for row in sized.rows
    ]
    header = ["layer", "type", "output", "params", "MACs", "activations", "RF"]
    totals = [
        ["parameters", f"{sized.total_params:,}"],
        ["MACs", f"{sized.macs:,}"],
        ["FLOPs (2 x MACs)", f"{sized.flops:,}"],
        ["activation memory (bytes)", f"{sized.activation_bytes:,}"],
        ["training memory (bytes, SGD with momentum)", f"{sized.training_bytes:,}"],
    ]
    caption = html.escape(
        f"{checkpoint['model_name']}, input {dims(sized.input_size)}. {sized.convention}"
    )
    return (
        f"<p class='sub'>{caption}</p>"
        + _table(header, rows, "summary", left=2)
        + "<p></p>"
        + _table(["total", ""], totals, "totals", left=1)
    )
