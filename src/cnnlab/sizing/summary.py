"""Layer-by-layer accounting of any ``nn.Module``: the lectures' sizing tables, for every model.

The model runs once on the ``meta`` device (shapes only, no memory) with hooks on its modules.
Named models and specs are built on ``meta`` by ``cnnlab.models.resolve``; a user's model is
run through ``torch.func.functional_call`` with meta copies of its parameters and buffers, so
it is neither moved nor copied (its train/eval flags are restored afterwards).

Counting conventions (also printed under every table):

* MACs are the multiply-accumulates of convolutions and linear layers, without bias:
  conv = output elements × (input channels / groups) × kernel area; transposed conv = input
  elements × (output channels / groups) × kernel area; linear = input rows × in × out features;
  a custom leaf with a ``kernel_size`` and a ``weight`` ending in the kernel's shape (LeNet-5's
  C3) = output positions × weights. Matrix products outside such layers (attention, ``x @ w``
  or ``F.linear`` in a ``forward``) count as torch's FLOP counter counts them, in the row of
  the module that ran them. FLOPs = 2 × MACs.
* Activation memory follows the lectures' VGG-16 table: the input plus the outputs of conv, pool
  and fully connected layers, float32 (4 bytes), MB = 10⁶ bytes. ``all_activations=True``
  counts the output of every leaf module (ReLU, batch norm, dropout, ...) too.
* Training memory for SGD with momentum ≈ parameters + gradients + momentum buffers + the
  activations above, kept for the backward pass.
* Receptive field and jump follow ``r_out = r_in + (k − 1)·j_in``, ``j_out = j_in·s`` along a
  chain of layers; they pass unchanged through activations, normalization, dropout, a softmax
  over channels and any custom leaf without parameters or buffers that keeps its input's shape,
  and are blank where branches merge (residual add, concatenation), after flattening or after a
  leaf that mixes positions otherwise (a softmax over a spatial axis, a blur held in a buffer).
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, field

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.geometry.arithmetic import GeometryWarning
from cnnlab.geometry.units import dims, megabytes, si
from cnnlab.models.resolve import resolve_model
from cnnlab.sizing.trace import Tracer, Window, counted_by_default, trace_or_explain
from cnnlab.validate import POSITIVE_INT, Flag, Instance, Items, Number, check

BYTES_PER_VALUE = 4  # float32


@dataclass
class LayerRow:
    """One row of a summary: a leaf module's call, or a module whose insides are aggregated.

    Shapes exclude the batch dimension; ``macs`` and ``activations`` (output elements) include
    it. ``kernel``, ``stride``, ``padding``, ``receptive_field`` and ``jump`` have one entry per
    spatial axis and are ``None`` where they do not apply. ``counted`` says whether the row's
    output is part of the activation-memory total.
    """

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...]
    kernel: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None
    params: int = 0
    macs: int = 0
    activations: int = 0
    counted: bool = False
    receptive_field: tuple[int, ...] | None = None
    jump: tuple[int, ...] | None = None
    note: str = ""


@dataclass
class ModelSummary:
    """The table ``summary`` returns: rows, totals, the conventions, and geometry warnings."""

    model_name: str
    input_size: tuple[int, ...]
    batch_size: int
    rows: list[LayerRow]
    trainable_params: int
    non_trainable_params: int
    macs: int
    activation_elements: int
    all_activations: bool = False
    unshown_params: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def flops(self) -> int:
        """FLOPs = 2 × MACs (a multiply and an add)."""
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        return BYTES_PER_VALUE * self.activation_elements

    @property
    def param_bytes(self) -> int:
        return BYTES_PER_VALUE * self.total_params

    @property
    def training_bytes(self) -> int:
        """SGD with momentum: parameters, their gradients and momentum, and the activations."""
        return (
            self.param_bytes + 2 * BYTES_PER_VALUE * self.trainable_params + self.activation_bytes
        )

    @property
    def convention(self) -> str:
        counted = (
            "the input and every layer's output (ReLU, BN, ... included)"
            if self.all_activations
            else "the input and the outputs of conv, pool and fc layers, as in the lecture's "
            "VGG-16 table (all_activations / --all-activations counts ReLU, BN, ... too)"
        )
        return (
            "MACs: multiply-accumulates of conv and linear layers (and of other matrix products, "
            "e.g. attention), bias not counted; "
            "FLOPs = 2 × MACs. "
            f"Activation memory counts {counted}; float32, MB = 10^6 bytes. "
            "Training memory (SGD with momentum) = parameters + gradients + momentum + "
            "activations. RF/jump: receptive field and its stride in input pixels along a chain "
            "of layers, blank where branches merge or after flattening."
        )

    def to_dict(self) -> dict:
        """Everything in the table as JSON-ready values."""
        return {
            "model": self.model_name,
            "input_size": list(self.input_size),
            "batch_size": self.batch_size,
            "rows": [asdict(row) for row in self.rows],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "unshown_params": self.unshown_params,
            "macs": self.macs,
            "flops": self.flops,
            "activation_elements": self.activation_elements,
            "activation_bytes": self.activation_bytes,
            "param_bytes": self.param_bytes,
            "training_bytes": self.training_bytes,
            "all_activations": self.all_activations,
            "convention": self.convention,
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __rich__(self) -> Group:
        return Group(self._layer_table(), self._totals_table(), *self._footer())

    def __str__(self) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=200, color_system=None, soft_wrap=False).print(self)
        return buffer.getvalue()

    def _layer_table(self) -> Table:
        """One line per row; dim activation counts are outside the activation-memory total."""
        table = Table(
            title=Text(f"{self.model_name}, input {dims(self.input_size)}, batch {self.batch_size}")
        )
        table.add_column("Layer")
        table.add_column("Type")
        for title in ("Output", "Kernel", "Params", "MACs", "Activations", "RF", "Jump"):
            table.add_column(title, justify="right")
        noted = any(row.note for row in self.rows)
        if noted:
            table.add_column("Note")
        for row in self.rows:
            cells = [
                Text(row.name),
                Text(row.type),
                dims(row.output_shape),
                _window(row),
                f"{row.params:,}" if row.params else "",
                f"{row.macs:,}" if row.macs else "",
                Text(f"{row.activations:,}", style="" if row.counted else "dim"),
                dims(row.receptive_field, square=True),
                dims(row.jump, square=True),
            ]
            if noted:
                cells.append(Text(row.note))
            table.add_row(*cells)
        return table

    def _totals_table(self) -> Table:
        totals = Table.grid(padding=(0, 2))
        totals.add_column()
        totals.add_column(justify="right")
        totals.add_column()
        totals.add_row("Parameters", f"{self.total_params:,}", megabytes(self.param_bytes))
        totals.add_row("  trainable", f"{self.trainable_params:,}", "")
        totals.add_row("  non-trainable", f"{self.non_trainable_params:,}", "")
        totals.add_row("MACs", f"{self.macs:,}", si(self.macs, "MACs"))
        totals.add_row("FLOPs (2 × MACs)", f"{self.flops:,}", si(self.flops, "FLOPs"))
        totals.add_row(
            "Activations", f"{self.activation_elements:,}", megabytes(self.activation_bytes)
        )
        totals.add_row(
            "Training memory", "", megabytes(self.training_bytes) + " (SGD with momentum)"
        )
        return totals

    def _footer(self) -> list[Text]:
        footer = [Text(self.convention, style="dim")]
        if self.unshown_params:
            footer.append(
                Text(
                    f"{self.unshown_params:,} parameters are in no row: modules that did not run "
                    "in eval mode (e.g. auxiliary classifiers) or held directly by a container.",
                    style="dim",
                )
            )
        footer.extend(Text(f"warning: {message}", style="yellow") for message in self.warnings)
        return footer


def _window(row: LayerRow) -> str:
    if row.kernel is None:
        return ""
    parts = [dims(row.kernel)]
    if row.stride is not None:
        parts.append("s" + dims(row.stride, square=True))
    if row.padding is not None:
        parts.append("p" + dims(row.padding, square=True))
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# From calls to rows.


def _note(module: nn.Module) -> str:
    note = getattr(module, "summary_note", None)
    return str(note()) if callable(note) else ""


def _window_fields(window: Window | None) -> dict:
    if window is None:
        return {}
    return {"kernel": window.kernel, "stride": window.stride, "padding": window.padding}


def _rows(
    tracer: Tracer,
    input_size: tuple[int, ...],
    batch_size: int,
    depth: int | None,
    all_activations: bool,
) -> list[LayerRow]:
    """One row per leaf call (or per call at ``depth``, its insides summed), input first."""
    calls = tracer.calls
    macs = [call.macs for call in calls]
    for index in range(len(calls) - 1, 0, -1):
        parent = calls[index].parent
        if parent is not None:
            macs[parent] += macs[index]
    rows = [
        LayerRow(
            name="input",
            type="Input",
            depth=1,
            output_shape=tuple(input_size),
            activations=batch_size * math.prod(input_size),
            counted=True,
            receptive_field=(1,) * (len(input_size) - 1),
            jump=(1,) * (len(input_size) - 1),
        )
    ]
    cut = math.inf if depth is None else depth
    seen: set[int] = set()
    for index, call in enumerate(calls):
        shown = call.depth <= cut and (call.leaf or call.depth == cut)
        # a module whose own code ran matrix products (x @ w in its forward) gets a row of its
        # own above its children's, with those MACs and the parameters it holds itself
        own = not shown and call.depth < cut and call.macs > 0
        note = _note(call.module)
        if not shown and not own and not (note and call.depth < cut):
            continue
        held = call.module.parameters(recurse=not own)
        fresh = [p for p in held if id(p) not in seen] if shown or own else []
        seen.update(id(p) for p in fresh)
        field_out = call.field_out
        rows.append(
            LayerRow(
                name=call.name,
                type=type(call.module).__name__,
                depth=call.depth,
                output_shape=call.output_shape,
                **(_window_fields(call.window) if shown else {}),
                params=sum(p.numel() for p in fresh),
                macs=macs[index] if shown else call.macs if own else 0,
                activations=call.elements,
                counted=call.leaf and (all_activations or counted_by_default(call)),
                receptive_field=tuple(f.size for f in field_out) if field_out else None,
                jump=tuple(f.jump for f in field_out) if field_out else None,
                note=note,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# The public entry point.


def parse_input_size(text: str) -> tuple[int, ...]:
    """``"3x224x224"`` (or ``3×224×224``, ``3,224,224``) as ``(3, 224, 224)``: channels first."""
    parts = re.split(r"\s*[x×,]\s*", text.strip().lower())
    if len(parts) < 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ConfigError(
            f"input size '{text}' is not channels x height x width: write it like 3x224x224"
        )
    return tuple(int(part) for part in parts)


_MODEL_OR_NAME = Instance((nn.Module, str), "an nn.Module, a model name or a spec string")


def summary(
    model_or_name: nn.Module | str,
    input_size: tuple[int, ...] | None = None,
    batch_size: int = 1,
    depth: int | None = None,
    all_activations: bool = False,
) -> ModelSummary:
    """Size a network layer by layer: shapes, parameters, MACs, memory, receptive fields.

    Nothing is allocated: the network runs on the ``meta`` device. A user's model is not moved,
    copied or changed.

    Args:
        model_or_name: an ``nn.Module``, a registered model name (``"vgg16"``) or a sequential
            spec (``"[conv6k5-pool2]x2-conv120k5-fc84-fc10"``, see :mod:`cnnlab.nn.spec`).
        input_size: ``(C, H, W)`` of one example; default: the model's ``default_input_size``
            (3×224×224 for a spec). A named model is built with ``in_chans=C`` if C differs.
        batch_size: examples per batch; MACs and activations scale with it, parameters do not.
        depth: show modules down to this nesting depth (1 = the model's children); deeper
            layers are summed into their parent's row. Default: every leaf layer.
        all_activations: count every layer's output in the activation memory (ReLU, BN, ...),
            not only the input and the conv, pool and fc outputs of the lecture's table.

    Returns:
        The summary: ``rows``, totals, ``to_dict()``; printable with rich or ``str()``.

    Raises:
        GeometryError: the input is too small (names the layer and the smallest input).
        UnknownNameError: ``model_or_name`` is neither a registered model nor a spec.
        SpecError: a malformed spec.
    """
    check("summary", "model_or_name", model_or_name, _MODEL_OR_NAME)
    check("summary", "input_size", input_size, Items(POSITIVE_INT, optional=True))
    check("summary", "batch_size", batch_size, POSITIVE_INT)
    check("summary", "depth", depth, Number(low=0, integer=True, optional=True))
    check("summary", "all_activations", all_activations, Flag())
    model, label, size = resolve_model(model_or_name, input_size)
    tracer = trace_or_explain(model, label, size, batch_size)
    leaves = [call for call in tracer.calls if call.leaf]
    counted = [c for c in leaves if all_activations or counted_by_default(c)]
    rows = _rows(tracer, size, batch_size, depth, all_activations)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    for message in tracer.warnings.values():
        warnings.warn(message, GeometryWarning, stacklevel=2)
    return ModelSummary(
        model_name=label,
        input_size=size,
        batch_size=batch_size,
        rows=rows,
        trainable_params=trainable,
        non_trainable_params=frozen,
        macs=sum(call.macs for call in tracer.calls),
        activation_elements=rows[0].activations + sum(call.elements for call in counted),
        all_activations=all_activations,
        unshown_params=trainable + frozen - sum(row.params for row in rows),
        warnings=list(tracer.warnings.values()),
    )
