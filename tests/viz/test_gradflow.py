"""Gradient flow: the norms are the layers' true gradient norms; plain nets starve early layers."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from viz_checkpoints import read_png, write_checkpoint

from cnnlab.models import create_model
from cnnlab.viz.gradflow import gradflow_figure, gradient_flow, save_gradflow


def test_norms_are_the_weight_gradients_of_each_layer():
    torch.manual_seed(0)
    model = create_model("lenet5_modern").eval()
    batch = (torch.randn(6, 1, 32, 32), torch.randint(0, 10, (6,)))
    flow = gradient_flow(model, batch, label="lenet")

    reference = copy.deepcopy(model).train()
    F.cross_entropy(reference(batch[0]), batch[1]).backward()
    layers = ["features.c1", "features.c3", "features.c5", "classifier.f6", "classifier.output"]
    assert flow.layers == layers
    modules = dict(reference.named_modules())
    expected = [float(modules[name].weight.grad.norm()) for name in layers]
    np.testing.assert_allclose(flow.norms, expected, rtol=1e-5)
    # the inspected model is left as it was: no gradients stored, still in eval mode
    assert all(p.grad is None for p in model.parameters()) and not model.training


class DeepMLP(nn.Module):
    """``depth`` ReLU layers of width 16 (default init), with or without identity skips."""

    def __init__(self, depth: int, residual: bool):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(16, 16) for _ in range(depth))
        self.head = nn.Linear(16, 4)
        self.residual = residual

    def forward(self, x):
        for layer in self.layers:
            x = x + torch.relu(layer(x)) if self.residual else torch.relu(layer(x))
        return self.head(x)


def test_deep_plain_net_starves_its_first_layers_and_a_residual_net_does_not():
    batch = (torch.randn(32, 16, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 4)
    flows = []
    for residual in (False, True):
        torch.manual_seed(0)
        flows.append(gradient_flow(DeepMLP(30, residual), batch, label=f"residual={residual}"))
    plain, residual = flows
    # the same weights, the same batch: only the skips differ
    assert plain.first_to_last < 1e-6
    assert residual.first_to_last > 1e-2
    assert residual.first_to_last > 1e4 * plain.first_to_last
    figure = gradflow_figure(flows)
    axes = figure.axes[0]
    assert axes.get_yscale() == "log" and len(axes.get_legend().get_texts()) == 2
    np.testing.assert_allclose(axes.lines[0].get_ydata(), plain.norms)


def test_command_overlays_checkpoints_and_model_names(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "run" / "best.pt", seed=5)
    path, flows = save_gradflow(
        [str(checkpoint), "lenet5_modern"], "digits", batch_size=16, out=tmp_path / "flow.png"
    )
    assert [len(f.norms) for f in flows] == [5, 5]
    assert flows[0].norms != flows[1].norms  # trained-as-saved weights vs a fresh seed-0 model
    picture = read_png(path)
    assert picture.shape == (550, 1100, 3)  # 11 x 5.5 inches at 100 dpi
    assert picture.std() > 10
