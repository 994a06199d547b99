"""Gradient flow: the norm of each layer's weight gradient, from input to output.

In a deep plain network the gradient reaching the first layers is a product of many layer
Jacobians and tends to shrink (or grow) with depth; a residual network adds an identity path
to each block, so the early layers receive a gradient of the same order as the late ones (He et
al. 2016). Drawing ||∂L/∂W|| per layer for several models on one log-scale axis shows that at a
glance. One forward and backward pass on a fixed batch, in training mode (batch norm uses the
batch's statistics, as in training); the model's gradients and mode are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from cnnlab.errors import CnnlabError

WEIGHTED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class GradientFlow:
    """Per-layer weight-gradient norms of one model, input side first.

    Attributes:
        label: the model's name for the legend.
        layers: module names of the conv and linear layers.
        norms: ``||∂L/∂W||_2`` of each layer's weight.
        loss: the loss the gradients were taken of.
    """

    label: str
    layers: list[str]
    norms: list[float]
    loss: float

    @property
    def first_to_last(self) -> float:
        """How much weaker the first layer's gradient is than the last one's."""
        return self.norms[0] / self.norms[-1] if self.norms[-1] else float("inf")


def gradient_flow(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    label: str = "",
    loss_fn: Callable = F.cross_entropy,
) -> GradientFlow:
    """One backward pass on ``batch``; the weight-gradient norm of every conv and linear layer."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHTED_LAYERS)]
    if not layers:
        raise CnnlabError(f"{type(model).__name__} has no conv or linear layer")
    weights = [module.weight for _, module in layers]
    was_training = model.training
    model.train()
    try:
        inputs, targets = batch
        outputs = model(inputs)
        if isinstance(outputs, tuple):  # auxiliary classifiers: the main head only
            outputs = outputs[0]
        loss = loss_fn(outputs, targets)
        gradients = torch.autograd.grad(loss, weights, allow_unused=True)
    finally:
        model.train(was_training)
    norms = [float(g.norm()) if g is not None else 0.0 for g in gradients]
    return GradientFlow(label, [name for name, _ in layers], norms, float(loss.detach()))


def gradflow_figure(flows: list[GradientFlow]) -> Figure:
    """Gradient norm against depth, one line per model, log-scale y."""
    figure = Figure(figsize=(11.0, 5.5))
    axes = figure.add_subplot()
    for flow in flows:
        depth = range(1, len(flow.norms) + 1)
        axes.plot(
            depth,
            flow.norms,
            marker="o",
            markersize=3,
            lw=1.5,
            label=f"{flow.label}: first/last = {flow.first_to_last:.2g}",
        )
    axes.set_yscale("log")
    axes.set_xlabel("weighted layer (conv / linear), input side → output side")
    axes.set_ylabel("‖∂L/∂W‖₂ of the layer's weight (log scale)")
    axes.set_title(
        "Gradient flow through depth (one batch, training mode): a slope means the gradient "
        "vanishes or explodes\ntowards the input; a flat line means every layer learns at a "
        "similar rate"
    )
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    figure.tight_layout()
    return figure


def save_gradflow(
    sources: list[str],
    data: str | None = None,
    *,
    batch_size: int = 32,
    seed: int = 0,
    data_dir: str | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
) -> tuple[Path, list[GradientFlow]]:
    """``cnnlab gradflow``: overlay the gradient flow of checkpoints or freshly built models.

    All models see the same batch; models given by name are built with ``seed``. ``data``
    ``None`` is the first run's own dataset (and data directory), as ``evaluate`` takes it, or
    random ``synthetic`` images when only model names are given.
    """
    from cnnlab.model_source import check_same_classes
    from cnnlab.validate import SEED, check
    from cnnlab.viz.inputs import default_output, fixed_batches, load_model, save_figure

    check("gradflow", "seed", seed, SEED)
    models = [load_model(source, device=device, seed=seed) for source in sources]
    check_same_classes(models, "overlay models trained on the same dataset")
    flows = []
    for loaded in models:
        if data is None:
            data, data_dir = loaded.data or "synthetic", data_dir or loaded.data_dir
        batches, _ = fixed_batches(
            data, 1, batch_size, loaded.input_size, data_dir=data_dir, device=device, seed=seed
        )
        flows.append(gradient_flow(loaded.model, batches[0], label=loaded.label))
    default = default_output(sources[0] if len(sources) == 1 else None, "gradflow")
    return save_figure(gradflow_figure(flows), out or default, inputs=sources), flows
