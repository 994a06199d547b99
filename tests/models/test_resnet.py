"""ResNets, plain, pre-activation and Wide ResNets, checked against torchvision and the papers."""

import functools
import inspect

import pytest
import torch
import torchvision
from model_checks import n_params, n_weights, randomize_batch_norm
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_entries, model_entry
from cnnlab.models.resnet import (
    BasicBlock,
    PreActBasicBlock,
    PreActBottleneck,
    ResNet,
    blocks_per_stage,
    cifar_resnet,
    wide_cifar_resnet,
)
from cnnlab.models.resolve import create_on_meta
from cnnlab.nn.drop_path import DropPath, drop_probabilities
from cnnlab.nn.shortcut import ZeroPadShortcut

# Parameter counts of torchvision's models (torchvision.models documentation, weights tables).
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "wide_resnet50_2": 68_883_240,
}

# He et al. 2016a, Table 6 (CIFAR-10), "# params", printed to this many decimals (in millions).
CIFAR_TABLE6 = {
    "resnet20": (0.27, 2),
    "resnet32": (0.46, 2),
    "resnet44": (0.66, 2),
    "resnet56": (0.85, 2),
    "resnet110": (1.7, 1),
    "resnet1202": (19.4, 1),
}

# He et al. 2016b, Tables 3-4 (CIFAR), and Zagoruyko & Komodakis 2016 (CIFAR results table).
# Both papers count convolution and fully connected weights, not BN's scale and shift
# (ResNet-1001 has 10.18M such weights, 10.33M with BN).
PAPER_WEIGHT_COUNTS = {
    "preact_resnet110": (1.7, 1),
    "preact_resnet164": (1.7, 1),
    "preact_resnet1001": (10.2, 1),
    "wrn_40_4": (8.9, 1),
    "wrn_16_8": (11.0, 1),
    "wrn_28_10": (36.5, 1),
}

# Exact totals (BN included) of independent implementations of the same nets:
# osmr/imgclsmob README tables (PreResNet-164(BN), PreResNet-1001, WRN-28-10).
REFERENCE_TOTALS = {
    "preact_resnet164": 1_703_258,
    "preact_resnet1001": 10_327_706,
    "wrn_28_10": 36_479_194,
}

RESNET_FAMILIES = {"resnet", "preact_resnet", "wide_resnet", "resnext"}
HUGE = {"resnet1202", "preact_resnet1001"}  # built on meta, not run: 1000+ layers of Python calls


@functools.cache
def default_on_meta(name: str) -> nn.Module:
    """A default-configured model on meta, built once (for counting only)."""
    return create_on_meta(name)


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMS))
def test_torchvision_parameter_counts(name):
    assert n_params(create_on_meta(name)) == TORCHVISION_PARAMS[name]
    with torch.device("meta"):
        assert n_params(getattr(torchvision.models, name)()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize(("name", "drop_path"), [("resnet18", 0.0), ("resnet50", 0.5)])
def test_loads_torchvision_state_dict_and_gives_same_outputs(name, drop_path):
    # Stochastic depth adds no parameter and is inactive in eval mode: compatibility holds.
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None)
    randomize_batch_norm(reference)
    model = create_model(name, drop_path=drop_path)
    model.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    model.eval()
    reference.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", ["resnet34", "resnet101", "resnet152", "wide_resnet50_2"])
def test_state_dict_keys_and_shapes_match_torchvision(name):
    with torch.device("meta"):
        ours = create_model(name).state_dict()
        theirs = getattr(torchvision.models, name)().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("name", list(CIFAR_TABLE6))
def test_cifar_resnet_parameters_match_table6(name):
    expected, decimals = CIFAR_TABLE6[name]
    model = default_on_meta(name)
    assert round(n_params(model) / 1e6, decimals) == expected
    assert model.default_input_size == (3, 32, 32)


@pytest.mark.parametrize(("name", "depth"), [("resnet20", 20), ("resnet56", 56), ("plain110", 110)])
def test_cifar_nets_have_6n_plus_2_weighted_layers(name, depth):
    layers = [m for m in default_on_meta(name).modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == depth  # option A adds no layer
    assert [m.out_channels for m in layers if isinstance(m, nn.Conv2d)][-1] == 64


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_nets_have_exactly_the_resnet_parameters(depth):
    # He et al. 2016a, Sec. 4.2: option-A shortcuts add no parameter to the plain counterpart.
    assert n_params(default_on_meta(f"plain{depth}")) == n_params(default_on_meta(f"resnet{depth}"))


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    out = ZeroPadShortcut(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0
    assert list(ZeroPadShortcut(16, 32, 2).parameters()) == []


def _silence_branch(block: nn.Module) -> None:
    """Make a block's residual branch output exactly zero."""
    last = block.bn2 if isinstance(block, BasicBlock) else block.conv2
    for p in last.parameters():
        nn.init.zeros_(p)


def test_plain_block_has_no_shortcut_but_resnet_block_does():
    x = torch.randn(2, 16, 8, 8)
    residual = create_model("resnet20").layer1[0].eval()
    plain = create_model("plain20").layer1[0].eval()
    plain.load_state_dict(residual.state_dict())
    _silence_branch(residual)
    _silence_branch(plain)
    with torch.no_grad():
        assert torch.equal(residual(x), torch.relu(x))  # F(x) = 0 leaves relu(x + 0)
        assert torch.count_nonzero(plain(x)) == 0  # nothing carries x past the block


def test_preactivation_block_is_a_clean_identity_when_its_branch_is_zero():
    # He et al. 2016b: no ReLU after the addition, so x_{l+1} = x_l + F(x_l) exactly.
    x = torch.randn(2, 16, 8, 8)  # negative values must survive
    block = create_model("preact_resnet110").layer1[1].eval()
    assert isinstance(block, PreActBasicBlock)
    _silence_branch(block)
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_preactivation_nets_end_with_bn_relu_and_share_conv_weights_with_resnets():
    model = create_model("preact_resnet18")
    assert isinstance(model.final_activation[0], nn.BatchNorm2d)
    assert isinstance(model.layer4[1], PreActBasicBlock)
    # Only BN placement differs from ResNet-18: the conv and fc weights are the same.
    assert n_weights(model) == n_weights(default_on_meta("resnet18"))
    assert isinstance(default_on_meta("preact_resnet50").layer1[0], PreActBottleneck)
    assert n_weights(default_on_meta("preact_resnet152")) == n_weights(default_on_meta("resnet152"))


@pytest.mark.parametrize("name", list(PAPER_WEIGHT_COUNTS))
def test_preact_and_wide_resnet_parameters_match_the_papers(name):
    expected, decimals = PAPER_WEIGHT_COUNTS[name]
    model = default_on_meta(name)
    assert round(n_weights(model) / 1e6, decimals) == expected
    if name in REFERENCE_TOTALS:
        assert n_params(model) == REFERENCE_TOTALS[name]


def test_preact_resnet164_and_1001_are_9n_plus_2_bottleneck_nets():
    for name, depth in [("preact_resnet164", 164), ("preact_resnet1001", 1001)]:
        model = default_on_meta(name)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
        blocks = [m for m in model.modules() if isinstance(m, PreActBottleneck)]
        assert len(blocks) == 3 * (depth - 2) // 9
        assert len(convs) == len(blocks) + 1  # one 3x3 per bottleneck, plus the stem
        assert model.fc.in_features == 256


def test_wide_resnet_widths_and_dropout():
    model = create_model("wrn_16_8", dropout=0.3)
    assert [model.layer1[0].conv1.out_channels, model.layer3[0].conv1.out_channels] == [128, 512]
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 6 and all(d.p == 0.3 for d in dropouts)  # one per block, n = 2
    # Dropout sits between the two convs: in eval mode it is inert.
    plain = create_model("wrn_16_8")
    plain.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), plain.eval()(x))


SMALL_NETS = {
    "resnet20": lambda: create_model("resnet20", num_classes=7, drop_path=0.2),
    "plain20": lambda: create_model("plain20", num_classes=7),
    "resnet18": lambda: create_model("resnet18", num_classes=7, drop_path=0.2),
    "preact_resnet18": lambda: create_model("preact_resnet18", num_classes=7, drop_path=0.2),
    # preact_resnet164's code path (pre-activation bottlenecks, projections) at 2 blocks a stage
    "preact_bottleneck_20": lambda: cifar_resnet(
        PreActBottleneck, 2, shortcut="projection", num_classes=7, drop_path=0.2
    ),
    # WRN-10-2: the Wide ResNet code path with dropout between the convs
    "wrn_10_2": lambda: wide_cifar_resnet(10, 2, num_classes=7, dropout=0.3, drop_path=0.2),
}


@pytest.mark.parametrize("name", list(SMALL_NETS))
def test_forward_and_backward_on_a_small_batch(name):
    model = SMALL_NETS[name]()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0


def test_stochastic_depth_follows_the_linear_decay_over_all_blocks():
    model = create_model("resnet110", drop_path=0.5)
    layers = [m for m in model.modules() if isinstance(m, DropPath)]
    assert len(layers) == 54
    assert [m.p for m in layers] == pytest.approx(drop_probabilities(54, 0.5))
    assert layers[-1].p == pytest.approx(0.5) and layers[0].p == pytest.approx(0.5 / 54)
    assert [m.p for m in create_model("resnet20", drop_path=True).modules()
            if isinstance(m, DropPath)][-1] == 0.5  # fmt: skip


def test_stochastic_depth_is_random_in_training_and_identity_in_eval():
    torch.manual_seed(0)
    with_sd = create_model("resnet20", drop_path=0.5)
    without = create_model("resnet20")
    without.load_state_dict(with_sd.state_dict())
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(with_sd.eval()(x), without.eval()(x))
        with_sd.train()
        assert not torch.equal(with_sd(x), with_sd(x))


def test_stochastic_depth_on_a_plain_net_is_refused():
    with pytest.raises(CnnlabError, match="shortcuts"):
        create_model("plain56", drop_path=0.5)
    with pytest.raises(CnnlabError, match=r"drop_path must be a number in \[0, 1\)"):
        create_model("resnet56", drop_path=1.5)


@pytest.mark.parametrize(("depth", "n"), [(20, 3), (110, 18), (1202, 200)])
def test_blocks_per_stage(depth, n):
    assert blocks_per_stage(depth, 2) == n


def test_depth_that_is_not_6n_plus_2_is_explained():
    with pytest.raises(CnnlabError, match="6n \\+ 2"):
        blocks_per_stage(21, 2)


def _family_names():
    return [e.name for e in list_entries() if e.family in RESNET_FAMILIES]


@pytest.mark.parametrize("name", _family_names())
def test_every_builder_is_registered_documented_and_builds_create_on_meta(name):
    entry = model_entry(name)
    assert entry.paper and entry.year in (2016, 2017)
    doc = inspect.getdoc(entry.builder)
    assert "et al." in doc or "Zagoruyko" in doc
    assert any(word in doc for word in ("Table", "Fig.", "Sec."))
    model = create_on_meta(name, num_classes=5, in_chans=1)
    c, h, w = model.default_input_size
    assert c == 1 and model.conv1.in_channels == 1
    assert model.fc.out_features == 5
    if name not in HUGE:
        assert model(torch.empty(2, c, h, w, device="meta")).shape == (2, 5)


def test_huge_nets_are_sized_create_on_meta():
    model = default_on_meta("resnet1202")
    assert len([m for m in model.modules() if isinstance(m, BasicBlock)]) == 600  # 3 x 200


def test_unknown_shortcut_or_stem_is_explained():
    with pytest.raises(CnnlabError, match="zero_pad"):
        ResNet(BasicBlock, (1, 1), (16, 32), stem="cifar", stem_width=16, shortcut="B")
    with pytest.raises(CnnlabError, match="imagenet"):
        ResNet(BasicBlock, (1, 1), (16, 32), stem="mnist", stem_width=16)
