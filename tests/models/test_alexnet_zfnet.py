"""AlexNet (Krizhevsky et al. 2012, torchvision) and ZFNet (Zeiler & Fergus 2013)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models.alexnet import ConvStage, EightLayerConvNet, krizhevsky_lrn


def conv_params(k: int, c_in: int, c_out: int, groups: int = 1) -> int:
    return k * k * (c_in // groups) * c_out + c_out


def fc_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# Krizhevsky et al. 2012, Fig. 2 / Section 3.5, one tower (every conv sees all maps below).
ALEXNET_PAPER_LAYERS = [
    conv_params(11, 3, 96),  # 34,944
    conv_params(5, 96, 256),  # 614,656
    conv_params(3, 256, 384),  # 885,120
    conv_params(3, 384, 384),  # 1,327,488
    conv_params(3, 384, 256),  # 884,992
    fc_params(6 * 6 * 256, 4096),  # 37,752,832
    fc_params(4096, 4096),  # 16,781,312
    fc_params(4096, 1000),  # 4,097,000
]
# Two towers: conv2, conv4, conv5 see only the 48 / 192 / 192 maps on their own GPU
# ("256 kernels of size 5x5x48", "384 kernels of size 3x3x192", "256 of size 3x3x192").
ALEXNET_TWO_TOWER_LAYERS = [
    ALEXNET_PAPER_LAYERS[0],
    conv_params(5, 96, 256, groups=2),
    ALEXNET_PAPER_LAYERS[2],
    conv_params(3, 384, 384, groups=2),
    conv_params(3, 384, 256, groups=2),
    *ALEXNET_PAPER_LAYERS[5:],
]

# Output sizes (C, H, W) after each conv and pool, on 227x227: the lecture's AlexNet table
# (shared/seeds/000, "Architecture: 8 layers"): 55x55x96, 27x27x96, 27x27x256, 13x13x256,
# 13x13x384, 13x13x384, 13x13x256, 6x6x256.
ALEXNET_PAPER_SIZES = [
    (96, 55, 55),
    (96, 27, 27),
    (256, 27, 27),
    (256, 13, 13),
    (384, 13, 13),
    (384, 13, 13),
    (256, 13, 13),
    (256, 6, 6),
]
# Zeiler & Fergus 2013, Fig. 3 on 224x224: conv1 110x110, pool 55x55, conv2 26x26, pool 13x13,
# conv3-5 13x13, pool 6x6; conv3-5 widened to 512-1024-512 (Table 2 and the lectures,
# shared/seeds/000 "third, fourth, and fifth convolutional layers have 512, 1024, and 512").
ZFNET_SIZES = [
    (96, 110, 110),
    (96, 55, 55),
    (256, 26, 26),
    (256, 13, 13),
    (512, 13, 13),
    (1024, 13, 13),
    (512, 13, 13),
    (512, 6, 6),
]


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_and_pool_sizes(model: nn.Module, input_size) -> list[tuple[int, ...]]:
    with torch.device("meta"):
        x = torch.empty(1, *input_size)
        sizes = []
        for module in model.features:
            x = module(x)
            if isinstance(module, nn.Conv2d | nn.MaxPool2d):
                sizes.append(tuple(x.shape[1:]))
    return sizes


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def test_alexnet_loads_torchvision_weights_and_gives_same_outputs():
    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None).eval()
    ours = cnnlab.create_model("alexnet").eval()
    ours.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        difference = (ours(x) - reference(x)).abs().max().item()
    assert difference < 1e-5
    assert ours.default_input_size == (3, 224, 224)
    assert count(ours) == count(reference) == 61_100_840  # torchvision's documented count


def test_alexnet_in_chans_and_num_classes():
    model = meta_model("alexnet", in_chans=1, num_classes=10)
    assert model.features[0].weight.shape == (64, 1, 11, 11)
    assert model.classifier[-1].out_features == 10
    assert model.default_input_size == (1, 224, 224)


def test_alexnet_paper_parameter_count_by_hand():
    one_tower = meta_model("alexnet_paper", two_towers=False)
    layers = [m for m in one_tower.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert [count(m) for m in layers] == ALEXNET_PAPER_LAYERS
    assert count(one_tower) == sum(ALEXNET_PAPER_LAYERS) == 62_378_344
    two_towers = meta_model("alexnet_paper")  # the paper's two towers are the default
    layers = [m for m in two_towers.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert [count(m) for m in layers] == ALEXNET_TWO_TOWER_LAYERS
    assert count(two_towers) == sum(ALEXNET_TWO_TOWER_LAYERS) == 60_965_224  # "60 million"


def test_alexnet_paper_two_towers_group_conv2_4_5_only():
    model = meta_model("alexnet_paper")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert convs[1].weight.shape == (256, 48, 5, 5)  # the paper's 5x5x48 kernels
    assert convs[3].weight.shape == (384, 192, 3, 3)


def test_alexnet_paper_layer_sizes_match_lecture():
    model = meta_model("alexnet_paper")
    assert model.default_input_size == (3, 227, 227)
    assert conv_and_pool_sizes(model, (3, 227, 227)) == ALEXNET_PAPER_SIZES
    first = model.features[0]
    assert (first.kernel_size, first.stride, first.padding) == ((11, 11), (4, 4), (0, 0))


def test_alexnet_paper_layer_order_lrn_pool_dropout():
    model = meta_model("alexnet_paper")
    kinds = [type(m).__name__ for m in model.features]
    # Section 3.3-3.4: ReLU, then response normalization after conv1 and conv2, then the
    # overlapping max-pooling; the fifth conv is pooled without normalization.
    assert kinds[:4] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert kinds[4:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert kinds.count("LocalResponseNorm") == 2
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert all((p.kernel_size, p.stride) == (3, 2) for p in pools)  # overlapping: z=3 > s=2
    dropouts = [m for m in model.classifier if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.5, 0.5]
    linears = [i for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear)]
    assert [type(model.classifier[i + 2]).__name__ for i in linears[:2]] == ["Dropout"] * 2


def paper_lrn(a: torch.Tensor, k=2.0, n=5, alpha=1e-4, beta=0.75) -> torch.Tensor:
    """Section 3.3 written out: b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)}
    a_j^2)^beta."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * (a[:, lo : hi + 1] ** 2).sum(dim=1)) ** beta
    return out


def test_lrn_is_the_papers_formula():
    torch.manual_seed(1)
    a = torch.rand(2, 9, 4, 4, dtype=torch.float64) * 60  # large enough for alpha to matter
    expected = paper_lrn(a)
    torch.testing.assert_close(krizhevsky_lrn()(a), expected)
    assert not torch.allclose(expected, a / 2**0.75)  # the normalisation term is not negligible


def test_zfnet_layer_sizes_match_paper_figure_3():
    model = meta_model("zfnet")
    assert model.default_input_size == (3, 224, 224)
    assert conv_and_pool_sizes(model, (3, 224, 224)) == ZFNET_SIZES
    first = model.features[0]
    assert (first.kernel_size, first.stride) == ((7, 7), (2, 2))
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 512, 1024, 512]
    assert all(c.groups == 1 for c in convs)  # one GPU: dense connections
    assert model.classifier[0].in_features == 512 * 6 * 6


def test_zfnet_pools_then_normalises():
    kinds = [type(m).__name__ for m in meta_model("zfnet").features]
    assert kinds[:4] == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm"]


def test_zfnet_and_alexnet_paper_share_one_class():
    assert type(meta_model("zfnet")) is type(meta_model("alexnet_paper")) is EightLayerConvNet


def test_in_chans_num_classes_paper_models():
    for name in ("alexnet_paper", "zfnet"):
        model = meta_model(name, in_chans=1, num_classes=10)
        assert model.features[0].in_channels == 1
        assert model.classifier[-1].out_features == 10
        assert model.default_input_size[0] == 1


@pytest.mark.parametrize(
    "stages",
    [
        [ConvStage(96, 3, groups=2)],  # 3 input channels do not split into 2 groups
        [ConvStage(96, 3, after=("norm",))],
    ],
    ids=["groups", "unknown-step"],
)
def test_bad_stage_is_a_config_error(stages):
    with pytest.raises(ConfigError):
        EightLayerConvNet(stages)
