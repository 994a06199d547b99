"""ResNeXt: torchvision compatibility, grouped bottlenecks and the paper's CIFAR table."""

import pytest
import torch
import torchvision
from model_checks import n_params, n_weights, randomize_batch_norm
from torch import nn

from cnnlab.models import create_model, model_entry
from cnnlab.models.resnext import cifar_resnext29
from cnnlab.models.resolve import create_on_meta

# torchvision.models documentation (weights tables): exact parameter counts.
TORCHVISION_PARAMS = {"resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336}

# Xie et al. 2017, Table 7 (CIFAR): "# params" in millions, counting conv and fc weights
# (68.05M such weights for 16x64d, 68.16M with BN's scale and shift).
TABLE7 = {"resnext29_8x64d": 34.4, "resnext29_16x64d": 68.1}

# osmr/imgclsmob README, CIFAR-10 table: ResNeXt-29 (16x64d) has 68,155,210 parameters in total.
REFERENCE_TOTALS = {"resnext29_16x64d": 68_155_210}


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMS))
def test_torchvision_parameter_counts_and_state_dict_layout(name):
    ours = create_on_meta(name)
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
    assert n_params(ours) == TORCHVISION_PARAMS[name] == n_params(theirs)
    shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert shapes == {k: v.shape for k, v in theirs.state_dict().items()}


def test_resnext50_loads_torchvision_weights_and_gives_same_outputs():
    torch.manual_seed(0)
    reference = torchvision.models.resnext50_32x4d(weights=None)
    randomize_batch_norm(reference)
    model = create_model("resnext50_32x4d", drop_path=0.3)
    model.load_state_dict(reference.state_dict())
    model.eval()
    reference.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max().item() < 1e-5


def test_cardinality_is_a_grouped_3x3_conv():
    block = create_on_meta("resnext50_32x4d").layer1[0]
    assert block.conv2.groups == 32 and block.conv2.in_channels == 32 * 4
    assert block.conv3.out_channels == 256
    cifar = create_on_meta("resnext29_16x64d")
    # Xie et al. 2017, Sec. 5.3: stage widths 64d*C = 1024, 2048, 4096; outputs 256, 512, 1024.
    widths = [getattr(cifar, f"layer{i}")[0].conv2.out_channels for i in (1, 2, 3)]
    assert widths == [1024, 2048, 4096]
    assert [getattr(cifar, f"layer{i}")[0].conv3.out_channels for i in (1, 2, 3)] == [
        256,
        512,
        1024,
    ]
    assert cifar.layer2[0].conv2.groups == 16


@pytest.mark.parametrize("name", list(TABLE7))
def test_cifar_resnext_parameters_match_table7(name):
    model = create_on_meta(name)
    assert round(n_weights(model) / 1e6, 1) == TABLE7[name]
    if name in REFERENCE_TOTALS:
        assert n_params(model) == REFERENCE_TOTALS[name]
    assert model.default_input_size == (3, 32, 32)
    convs_and_fc = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(convs_and_fc) - 3 == 29  # 29 layers, not counting the 3 projection shortcuts


def test_cifar_resnext_forward_and_backward_with_stochastic_depth():
    # ResNeXt-29 (4x4d): resnext29_8x64d's code path at a width that trains in a blink.
    model = cifar_resnext29(4, 4, num_classes=4, in_chans=3, drop_path=0.5)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4)
    out.sum().backward()
    assert model.layer3[2].conv2.weight.grad is not None


def test_builders_name_the_paper():
    for name in [*TORCHVISION_PARAMS, *TABLE7]:
        assert model_entry(name).paper == "Xie et al. 2017"
        assert model_entry(name).family == "resnext"
