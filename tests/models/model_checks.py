"""Helpers the model tests share: meta-device builds, the papers' ways of counting parameters,
torchvision's weights in cnnlab's models, and BatchNorm statistics worth comparing."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def on_meta(builder, **kwargs) -> nn.Module:
    """Build on the meta device: shapes and counts without memory or initialisation time."""
    with torch.device("meta"):
        return builder(**kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def n_weights(model: nn.Module) -> int:
    """Conv and linear weights, the way the CIFAR papers count parameters."""
    layers = (nn.Conv2d, nn.Linear)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, layers))


def with_weights_of(reference: nn.Module, builder, **kwargs) -> nn.Module:
    """Our model holding ``reference``'s weights; the strict load checks keys and shapes."""
    model = on_meta(builder, **kwargs).to_empty(device="cpu")
    model.load_state_dict(reference.state_dict())
    return model


def randomize_batch_norm(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine weights, so eval-mode comparisons exercise them."""
    gen = torch.Generator().manual_seed(1)
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            for tensor, low, high in (
                (bn.running_mean, -0.2, 0.2),
                (bn.running_var, 0.5, 1.5),
                (bn.weight.data, 0.5, 1.5),
                (bn.bias.data, -0.2, 0.2),
            ):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * (high - low) + low)


def torch_macs(model: nn.Module, input_size: tuple[int, ...] | None = None) -> int:
    """Multiply-adds of one image by torch's own FLOP counter (FLOPs / 2), an independent count,
    on the meta device; ``input_size`` defaults to the model's own."""
    size = input_size or model.default_input_size
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        model.eval()(torch.empty(1, *size))
    return counter.get_total_flops() // 2


def output_shapes(model: nn.Module, paths: dict[str, str], input_size) -> dict[str, tuple]:
    """The output shape (without the batch) of each named submodule (name -> module path) for
    one image of ``input_size`` on the meta device."""
    shapes = {}
    for name, path in paths.items():
        module = model.get_submodule(path)
        module.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, o.shape[1:]))
    with torch.device("meta"):
        model.eval()(torch.empty(1, *input_size))
    return {name: tuple(shapes[name]) for name in paths}
