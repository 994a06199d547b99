"""The speedrun net against airbench94's network written out in plain torch (Jordan 2024)."""

from __future__ import annotations

import torch
from torch import nn

import cnnlab


def airbench94_net() -> nn.Sequential:
    """airbench94's net as its script builds it: a 2x2 conv with bias, three
    conv-pool-BN-GELU-conv-BN-GELU groups of 64, 256, 256 channels, max-pool 3, bias-free head."""

    def group(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding="same", bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(cout),
            nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding="same", bias=False),
            nn.BatchNorm2d(cout),
            nn.GELU(),
        ]

    return nn.Sequential(
        nn.Conv2d(3, 24, 2, padding=0, bias=True),
        nn.GELU(),
        *group(24, 64),
        *group(64, 256),
        *group(256, 256),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(256, 10, bias=False),
    )


def test_parameters_match_airbench94_layer_by_layer():
    model = cnnlab.create_model("speedrun_cifar_net")
    reference = airbench94_net()
    ours = [tuple(p.shape) for p in model.parameters()]
    theirs = [tuple(p.shape) for p in reference.parameters()]
    assert ours == theirs
    assert sum(p.numel() for p in model.parameters()) == 1_972_792  # the docstring's table


def test_shapes_and_logit_scale():
    model = cnnlab.create_model("speedrun_cifar_net").eval()
    x = torch.randn(2, 3, 32, 32)
    features = model.forward_features(x)
    assert features.shape == (2, 256, 3, 3)
    pooled = features.amax(dim=(2, 3))
    assert torch.allclose(model(x), model.head(pooled) / 9, atol=1e-6)
    assert model.default_input_size == (3, 32, 32)
    assert model.get_classifier() is model.head


def test_other_class_and_channel_counts():
    model = cnnlab.create_model("speedrun_cifar_net", num_classes=100, in_chans=1)
    assert model.whiten.out_channels == 8  # each of 1 x 2 x 2 patch directions and its negative
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 100)
