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

import torch
from rich.table import Table
from rich.text import Text
from torch import nn

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.geometry.arithmetic import GeometryWarning
from cnnlab.geometry.units import dims, si
from cnnlab.models import create_model, list_entries, list_models
from cnnlab.models.resnet import Bottleneck
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
        "create_model(..., weights=NAME) and --weights, the default first; Notes: where a "
        "bottleneck ResNet strides (the paper's 1x1 or torchvision's 3x3, \"v1.5\") and the "
        "parameters without auxiliary classifiers (what papers count)",
    )
    for title, justify in [
        ("Family", "left"),
        ("Model", "left"),
        ("Parameters", "right"),
        ("MACs", "right"),
        ("Input", "right"),
        ("Weights", "left"),
        ("Paper", "left"),
        ("Notes", "left"),
    ]:
        table.add_column(title, justify=justify)
    sizes = _ZooSizes()
    for index, entry in enumerate(entries):
        first_of_family = index == 0 or entries[index - 1].family != entry.family
        last_of_family = index + 1 == len(entries) or entries[index + 1].family != entry.family
        notes = ""
        try:
            params, macs, input_size, notes = sizes.get(entry)
            numbers = [f"{params:,}", si(macs), dims(tuple(input_size))]
        except CnnlabError as error:
            numbers = ["", Text(f"cannot size: {error}", style="red"), ""]
        table.add_row(
            entry.family if first_of_family else "",
            entry.name,
            *numbers,
            ", ".join(entry.weights),
            Text(entry.paper),
            Text(notes),
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

    def get(self, entry) -> tuple[int, int, list[int], str]:
        ours = entry.builder.__module__.startswith("cnnlab.")
        if ours and entry.name in self.rows:
            return tuple(self.rows[entry.name])
        with torch.device("meta"):
            model = create_model(entry.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)
            sized = summary(model)
        row = (sized.total_params, sized.macs, list(sized.input_size), model_notes(model))
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


def model_notes(model: nn.Module) -> str:
    """What ``cnnlab models`` notes about a model where papers and libraries count differently.

    Bottleneck ResNets: where a downsampling block strides (the paper's first 1x1, or
    torchvision's 3x3, "v1.5", which costs more MACs: ResNet-50 4.09 G against 3.86 G).
    Models with auxiliary classifiers: the parameters without them, which is what papers
    count (GoogLeNet's "6.8M").
    """
    notes = []
    placements = {
        "1x1 (paper)" if block.conv1.stride != (1, 1) else "3x3 (torchvision v1.5)"
        for block in model.modules()
        if isinstance(block, Bottleneck)
        and (block.conv1.stride, block.conv2.stride) != ((1, 1),) * 2
    }
    if placements:
        notes.append("stride in the " + " and ".join(sorted(placements)))
    auxiliary = [name for name, _ in model.named_children() if name.lower().startswith("aux")]
    if auxiliary:
        without = sum(p.numel() for p in model.parameters()) - sum(
            p.numel() for name in auxiliary for p in getattr(model, name).parameters()
        )
        notes.append(f"{without:,} parameters without the auxiliary classifiers")
    return "; ".join(notes)


def _source_stamp() -> str:
    """A digest of the torch version and every cnnlab source file's path, size and mtime."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(torch.__version__.encode())
    for source in sorted(package.rglob("*.py")):
        info = source.stat()
        digest.update(f"{source.relative_to(package)}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()
