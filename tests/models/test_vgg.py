"""VGG configurations A-E (Simonyan & Zisserman 2014, Tables 1-2) against torchvision and the
lecture's VGG-16 table."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab

# Parameter counts from torchvision's model documentation (weights tables, "num_params").
TORCHVISION_PARAMETERS = {
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
}
# Simonyan & Zisserman 2014, Table 2: "Number of parameters (in millions)".
PAPER_TABLE_2_MILLIONS = {
    "vgg11": 133,  # A
    "vgg11_lrn": 133,  # A-LRN
    "vgg13": 133,  # B
    "vgg16_c": 134,  # C
    "vgg16": 138,  # D
    "vgg19": 144,  # E
}
# Table 1: weight layers per configuration (convolutions + 3 fully connected).
PAPER_WEIGHT_LAYERS = {
    "vgg11": 11,
    "vgg11_lrn": 11,
    "vgg13": 13,
    "vgg16_c": 16,
    "vgg16": 16,
    "vgg19": 19,
}
# The lecture's VGG-16 table (shared/seeds/000, "VGGNet"): output size of every conv and pool
# as its memory column writes it (C, H, W), and the weights of every conv and fc (no biases).
LECTURE_VGG16_SIZES = [
    (64, 224, 224),
    (64, 224, 224),
    (64, 112, 112),
    (128, 112, 112),
    (128, 112, 112),
    (128, 56, 56),
    (256, 56, 56),
    (256, 56, 56),
    (256, 56, 56),
    (256, 28, 28),
    (512, 28, 28),
    (512, 28, 28),
    (512, 28, 28),
    (512, 14, 14),
    (512, 14, 14),
    (512, 14, 14),
    (512, 14, 14),
    (512, 7, 7),
]
LECTURE_VGG16_WEIGHTS = [
    1_728,
    36_864,
    73_728,
    147_456,
    294_912,
    589_824,
    589_824,
    1_179_648,
    2_359_296,
    2_359_296,
    2_359_296,
    2_359_296,
    2_359_296,
    102_760_448,
    16_777_216,
    4_096_000,
]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


@pytest.mark.parametrize("name", TORCHVISION_PARAMETERS)
def test_parameters_and_state_dict_match_torchvision(name):
    ours = meta_model(name)
    with torch.device("meta"):
        reference = torchvision.models.get_model(name, weights=None)
    assert count(ours) == count(reference) == TORCHVISION_PARAMETERS[name]
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert ours_shapes == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours.default_input_size == (3, 224, 224)


def test_same_outputs_as_torchvision_on_same_weights():
    torch.manual_seed(0)
    reference = torchvision.models.vgg11_bn(weights=None)
    reference.features[1].running_mean.uniform_(-0.5, 0.5)  # non-trivial statistics in eval
    reference.features[1].running_var.uniform_(0.5, 2.0)
    ours = cnnlab.create_model("vgg11_bn")
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        difference = (ours.eval()(x) - reference.eval()(x)).abs().max().item()
    assert difference < 1e-5


@pytest.mark.parametrize("name", PAPER_TABLE_2_MILLIONS)
def test_parameters_match_paper_table_2(name):
    model = meta_model(name)
    assert round(count(model) / 1e6) == PAPER_TABLE_2_MILLIONS[name]
    weight_layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weight_layers) == PAPER_WEIGHT_LAYERS[name]


def test_configuration_c_has_1x1_convs_ending_blocks_3_to_5():
    model = meta_model("vgg16_c")
    block, blocks = [], []
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            block.append(module.kernel_size[0])
            assert module.padding[0] == module.kernel_size[0] // 2  # sizes kept
        elif isinstance(module, nn.MaxPool2d):
            blocks.append(block)
            block = []
    kernels = [k for b in blocks for k in b]
    assert blocks == [[3, 3], [3, 3], [3, 3, 1], [3, 3, 1], [3, 3, 1]]
    assert kernels.count(1) == 3
    # C minus D: three 3x3 convs became 1x1 (8/9 of their weights gone).
    difference = 8 * (256 * 256 + 2 * 512 * 512)
    assert count(meta_model("vgg16")) - count(model) == difference


def test_configuration_a_lrn_normalises_after_the_first_layer():
    kinds = [type(m).__name__ for m in meta_model("vgg11_lrn").features][:4]
    assert kinds == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert count(meta_model("vgg11_lrn")) == count(meta_model("vgg11"))  # LRN has no weights


def test_vgg16_reproduces_the_lecture_table():
    model = meta_model("vgg16")
    with torch.device("meta"):
        x = torch.empty(1, 3, 224, 224)
        sizes = []
        for module in model.features:
            x = module(x)
            if isinstance(module, nn.Conv2d | nn.MaxPool2d):
                sizes.append(tuple(x.shape[1:]))
    assert sizes == LECTURE_VGG16_SIZES
    weights = [m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert weights == LECTURE_VGG16_WEIGHTS


def test_in_chans_changes_only_the_first_conv():
    gray = meta_model("vgg16_bn", in_chans=1, num_classes=10)
    rgb = meta_model("vgg16_bn")
    assert gray.features[0].weight.shape == (64, 1, 3, 3)
    assert gray.classifier[-1].out_features == 10
    assert gray.default_input_size == (1, 224, 224)
    changed = {
        k
        for k, v in gray.state_dict().items()
        if tuple(v.shape) != tuple(rgb.state_dict()[k].shape)
    }
    assert changed == {"features.0.weight", "classifier.6.weight", "classifier.6.bias"}


def test_dropout_option_passes_through():
    model = meta_model("vgg11", dropout=0.3)
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.3, 0.3]
