"""The model zoo as one table: parameters and MACs of every registered model, grouped by family.

Each model is built and sized on the meta device (no memory), which still takes about ten
seconds for the whole zoo on a small CPU: Python builds some 13,000 modules for ResNet-1202,
PreAct-ResNet-1001 and the like. The numbers of cnnlab's own models are therefore kept in a
small JSON file (``~/.cache/cnnlab/models-table.json``, or under ``$CNNLAB_CACHE``) stamped with
the size and modification time of every cnnlab source file and the torch version: any change
to the code sizes everything again, so the table always matches the code. Models registered
from outside cnnlab are sized on every call.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from rich.table import Table
from rich.text import Text

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.geometry.arithmetic import GeometryWarning
from cnnlab.geometry.units import dims, si
from cnnlab.models import list_entries, list_models
from cnnlab.sizing.summary import summary


def models_table(pattern: str | None = None) -> Table:
    """A rich table of the registered models matching ``pattern`` (shell wildcards).

    Raises:
        UnknownNameError: ``pattern`` matches no model (nearest names suggested).
    """
    entries = list_entries(pattern)
    if pattern and not entries:
        raise unknown_name("model pattern", pattern, list_models(), "run `cnnlab models`")
    table = Table(
        title="cnnlab models",
        caption="MACs at the default input size; FLOPs = 2 × MACs; Weights: names for "
        "create_model(..., weights=NAME) and --weights, the default first",
    )
    for title, justify in [
        ("Family", "left"),
        ("Model", "left"),
        ("Parameters", "right"),
        ("MACs", "right"),
        ("Input", "right"),
        ("Weights", "left"),
        ("Paper", "left"),
    ]:
        table.add_column(title, justify=justify)
    sizes = _ZooSizes()
    for index, entry in enumerate(entries):
        first_of_family = index == 0 or entries[index - 1].family != entry.family
        last_of_family = index + 1 == len(entries) or entries[index + 1].family != entry.family
        try:
            params, macs, input_size = sizes.get(entry)
            numbers = [f"{params:,}", si(macs), dims(tuple(input_size))]
        except CnnlabError as error:
            numbers = ["", Text(f"cannot size: {error}", style="red"), ""]
        table.add_row(
            entry.family if first_of_family else "",
            entry.name,
            *numbers,
            ", ".join(entry.weights),
            Text(entry.paper),
            end_section=last_of_family,
        )
    sizes.save()
    return table


class _ZooSizes:
    """Parameters, MACs and input size per model, from the stamped cache or freshly sized."""

    def __init__(self) -> None:
        root = Path(os.environ.get("CNNLAB_CACHE") or Path.home() / ".cache" / "cnnlab")
        self.path = root / "models-table.json"
        self.stamp = _source_stamp()
        try:
            cached = json.loads(self.path.read_text())
        except (OSError, ValueError):
            cached = {}
        self.rows = cached.get("rows", {}) if cached.get("stamp") == self.stamp else {}
        self.changed = False

    def get(self, entry) -> tuple[int, int, list[int]]:
        ours = entry.builder.__module__.startswith("cnnlab.")
        if ours and entry.name in self.rows:
            return tuple(self.rows[entry.name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)
            sized = summary(entry.name)
        row = (sized.total_params, sized.macs, list(sized.input_size))
        if ours:
            self.rows[entry.name] = row
            self.changed = True
        return row

    def save(self) -> None:
        """Write the cache atomically; a read-only home only costs the next call its speed."""
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"stamp": self.stamp, "rows": self.rows}))
            tmp.replace(self.path)
        except OSError:
            pass


def _source_stamp() -> str:
    """A digest of the torch version and every cnnlab source file's path, size and mtime."""
    import torch

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(torch.__version__.encode())
    for source in sorted(package.rglob("*.py")):
        info = source.stat()
        digest.update(f"{source.relative_to(package)}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()
