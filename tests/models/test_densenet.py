"""DenseNet (Huang et al. 2017) against torchvision, the paper's Tables 1-2 and the lecture."""

import pytest
import torch
import torchvision
from model_checks import n_params
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import create_model, list_models, model_entry
from cnnlab.models.densenet import DenseBlock, DenseLayer, DenseNet, Transition

# torchvision's parameter counts (its model documentation; the lecture's comparison table
# rounds them to 7.98M, 28.68M, 14.15M, 20.01M).
TORCHVISION_PARAMS = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}

# Huang et al. 2017, Table 1 (also the lecture's table): k = 32, dense layers per block.
TABLE_1_BLOCKS = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
    "densenet264": (6, 12, 64, 48),
}

# Huang et al. 2017, Table 2: DenseNet-BC on CIFAR, (depth L, growth k) -> params (M).
TABLE_2_PARAMS = {
    "densenet_bc_100_12": (100, 12, 0.8),
    "densenet_bc_250_24": (250, 24, 15.3),
    "densenet_bc_190_40": (190, 40, 25.6),
}


def _build_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return create_model(name)


def _weighted_layers(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


@pytest.mark.parametrize("name", TORCHVISION_PARAMS)
def test_loads_torchvision_weights_and_gives_the_same_outputs(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    model = create_model(name).eval()
    model.load_state_dict(reference.state_dict())
    assert n_params(model) == TORCHVISION_PARAMS[name]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() < 1e-5


@pytest.mark.parametrize("name", TABLE_1_BLOCKS)
def test_structure_follows_table_1(name):
    model = _build_meta(name)
    blocks = [m for m in model.modules() if isinstance(m, DenseBlock)]
    assert tuple(len(b) for b in blocks) == TABLE_1_BLOCKS[name]
    assert all(layer.growth_rate == 32 for b in blocks for layer in b.values())
    # Output sizes of Table 1: 112 after the stem conv, 56, 28, 14, 7 for the four blocks.
    sides = []
    hooks = [b.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for b in blocks]
    stem = model.features.conv0
    hooks.append(stem.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])))
    with torch.device("meta"):
        model(torch.empty(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    assert sides == [112, 56, 28, 14, 7]


@pytest.mark.parametrize("name", ["densenet121", "densenet169", "densenet201"])
def test_depth_in_the_name_counts_weighted_layers(name):
    assert _weighted_layers(_build_meta(name)) == int(name.removeprefix("densenet"))


def test_densenet264_as_in_table_1():
    model = _build_meta("densenet264")
    # Table 1's block sizes give 1 + 2·130 + 3 + 1 = 265 weighted layers; the paper names it 264.
    assert _weighted_layers(model) == 265
    # Closed-form count for k=32, θ=0.5, bottleneck 4k, checked on DenseNet-121 first.
    assert _closed_formn_params((6, 12, 24, 16)) == TORCHVISION_PARAMS["densenet121"]
    assert n_params(model) == _closed_formn_params((6, 12, 64, 48))
    assert round(n_params(model) / 1e6, 1) == 33.3


def _closed_formn_params(blocks: tuple[int, ...], k: int = 32, width: int = 64) -> int:
    """Parameters of an ImageNet DenseNet-BC, summed layer by layer from the paper's recipe."""
    total = 7 * 7 * 3 * width + 2 * width  # stem conv and its BN
    for index, layers in enumerate(blocks):
        for layer in range(layers):
            maps = width + k * layer  # k0 + k(l-1)
            total += 2 * maps + maps * 4 * k + 2 * 4 * k + 4 * k * 9 * k
        width += layers * k
        if index < len(blocks) - 1:
            total += 2 * width + width * (width // 2)
            width //= 2
    return total + 2 * width + width * 1000 + 1000


@pytest.mark.parametrize("name", TABLE_2_PARAMS)
def test_cifar_densenet_bc_matches_table_2(name):
    depth, growth, params_m = TABLE_2_PARAMS[name]
    model = _build_meta(name)
    assert round(n_params(model) / 1e6, 1) == params_m
    assert _weighted_layers(model) == depth
    assert model.features.conv0.out_channels == 2 * growth  # DenseNet-BC: 2k stem maps
    assert model.default_input_size == (3, 32, 32)
    transitions = [m for m in model.modules() if isinstance(m, Transition)]
    assert len(transitions) == 2
    assert all(t.conv.out_channels == t.conv.in_channels // 2 for t in transitions)  # θ = 0.5


def test_lecture_growth_rate_table():
    # The lecture: k0 = 5, k = 4 -> layers 1..4 receive 5, 9, 13, 17 maps.
    block = DenseBlock(4, in_features=5, growth_rate=4, bn_size=4, drop_rate=0.0)
    assert [layer.in_features for layer in block.values()] == [5, 9, 13, 17]
    assert [layer.conv1.in_channels for layer in block.values()] == [5, 9, 13, 17]
    assert block(torch.randn(2, 5, 6, 6)).shape == (2, 5 + 4 * 4, 6, 6)
    assert block["denselayer4"].summary_note() == "in = k0 + k(l−1) = 5 + 4·3 = 17"


def test_dense_layers_and_transitions_explain_themselves():
    model = _build_meta("densenet121")
    layer = model.features.denseblock1.denselayer6
    assert isinstance(layer, DenseLayer)
    assert layer.summary_note() == "in = k0 + k(l−1) = 64 + 32·5 = 224"
    assert model.features.transition1.summary_note() == "θ·m = 0.5·256 = 128"


def test_summary_shows_the_input_maps():
    from cnnlab.sizing import summary

    report = summary("densenet121")
    notes = {row.note for row in report.rows}
    assert "in = k0 + k(l−1) = 64 + 32·5 = 224" in notes
    assert report.total_params == TORCHVISION_PARAMS["densenet121"]


def test_dense_block_concatenates_every_earlier_output():
    torch.manual_seed(0)
    block = DenseBlock(3, in_features=4, growth_rate=2, bn_size=2, drop_rate=0.0).eval()
    x = torch.randn(1, 4, 5, 5)
    out = block(x)
    torch.testing.assert_close(out[:, :4], x)  # the block input passes through unchanged
    first = block["denselayer1"](x)
    torch.testing.assert_close(out[:, 4:6], first)
    second = block["denselayer2"](torch.cat([x, first], 1))
    torch.testing.assert_close(out[:, 6:8], second)


@pytest.mark.parametrize(("name", "side"), [("densenet_bc_190_40", 8), ("densenet264", 32)])
def test_forward_backward_of_the_largest_at_a_tiny_input(name, side):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    out = model(torch.randn(2, 3, side, side))
    assert out.shape == (2, 3)
    out.sum().backward()
    assert torch.isfinite(model.features.conv0.weight.grad).all()


def test_forward_backward_small_batch_other_channels():
    torch.manual_seed(0)
    model = create_model("densenet_bc_100_12", num_classes=100, in_chans=1)
    assert model.default_input_size == (1, 32, 32)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 100)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = create_model("densenet_bc_100_12", drop_rate=0.2)
    x = torch.randn(2, 3, 8, 8)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_registered_with_paper():
    names = {*TORCHVISION_PARAMS, *TABLE_1_BLOCKS, *TABLE_2_PARAMS}
    assert names == set(list_models("densenet*"))
    for name in names:
        entry = model_entry(name)
        assert entry.paper == "Huang et al. 2017" and entry.family == "densenet"
        assert "Table" in entry.builder.__doc__


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stem": "tiny"}, "stem"),
        ({"compression": 0.0}, "compression"),
        ({"growth_rate": 0}, "growth_rate"),
        ({"block_config": ()}, "block"),
    ],
)
def test_bad_configuration_raises_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DenseNet(**kwargs)
