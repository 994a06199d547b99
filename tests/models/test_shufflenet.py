"""ShuffleNet v1 against the paper's Table 1 (Zhang et al. 2017) and its channel shuffle."""

import functools

import pytest
import torch
from model_checks import n_params, torch_macs
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import create_model, list_models, model_entry
from cnnlab.models.resolve import create_on_meta
from cnnlab.models.shufflenet import ShuffleNetV1, ShuffleUnit, make_divisible
from cnnlab.nn.shuffle import ChannelShuffle

# Zhang et al. 2017, Table 1: output channels of stages 2-4 and complexity (MFLOPs, i.e.
# millions of mult-adds) of ShuffleNet 1× for each number of groups g.
TABLE_1 = {
    1: ((144, 288, 576), 143),
    2: ((200, 400, 800), 140),
    3: ((240, 480, 960), 137),
    4: ((272, 544, 1088), 133),
    8: ((384, 768, 1536), 137),
}

# Exact parameter counts of an independent implementation (osmr/imgclsmob model table,
# "ShuffleNet x1.0 (g=3) ... 1,865,728").
IMGCLSMOB_PARAMS = {1: 1_531_936, 2: 1_733_848, 3: 1_865_728, 4: 1_968_344, 8: 2_434_768}

# Scaled models: mult-adds (M) and parameters (M, to 0.1M) of the authors' release
# (megvii-model/ShuffleNet-Series, ShuffleNetV1 README; the g=3 mult-adds are also those the
# paper gives for ShuffleNet s×: 2× 524M, 1.5× 292M, 1× 140M, 0.5× 38M). Their 2.0× g=3 count
# (5.4M) omits the classifier bias, which tips it past the rounding boundary, so it is left out.
SCALED = [
    # (groups, width_mult, mult-adds (M), params (M) or None)
    (3, 0.5, 38, 0.7),
    (3, 1.0, 138, 1.9),
    (3, 1.5, 292, 3.4),
    (3, 2.0, 524, None),
    (8, 0.5, 40, 1.0),
    (8, 1.0, 138, 2.4),
    (8, 1.5, 290, 4.3),
    (8, 2.0, 522, 6.5),
]


@functools.cache
def _build_meta(name: str, **kwargs) -> nn.Module:
    """Built once per test session on the meta device (no memory, no initialisation cost)."""
    return create_on_meta(name, **kwargs)


@pytest.mark.parametrize("groups", TABLE_1)
def test_stage_widths_follow_table_1(groups):
    widths, _ = TABLE_1[groups]
    model = _build_meta(f"shufflenet_v1_g{groups}")
    with torch.device("meta"):
        x = model.stem(torch.empty(1, 3, 224, 224))
        assert x.shape == (1, 24, 56, 56)
        for stage, width, side in zip(
            (model.stage2, model.stage3, model.stage4), widths, (28, 14, 7), strict=True
        ):
            x = stage(x)
            assert x.shape == (1, width, side, side)
    assert [len(s) for s in (model.stage2, model.stage3, model.stage4)] == [4, 8, 4]


@pytest.mark.parametrize("groups", TABLE_1)
def test_complexity_and_params_match_references(groups):
    model = _build_meta(f"shufflenet_v1_g{groups}")
    assert torch_macs(model) / 1e6 == pytest.approx(TABLE_1[groups][1], rel=0.05)
    assert n_params(model) == IMGCLSMOB_PARAMS[groups]


@pytest.mark.parametrize(("groups", "width_mult", "macs_m", "params_m"), SCALED)
def test_width_scales_match_the_published_models(groups, width_mult, macs_m, params_m):
    model = _build_meta(f"shufflenet_v1_g{groups}", width_mult=width_mult)
    assert abs(torch_macs(model) / 1e6 - macs_m) < 1.0  # printed to the nearest million
    if params_m is not None:
        assert round(n_params(model) / 1e6, 1) == params_m


def test_summary_reports_about_140m_mult_adds():
    from cnnlab.sizing import summary

    report = summary("shufflenet_v1_g3")
    assert report.macs / 1e6 == pytest.approx(137, rel=0.05)
    assert report.total_params == IMGCLSMOB_PARAMS[3]


@pytest.mark.parametrize("width_mult", [0.5, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("groups", TABLE_1)
def test_every_group_and_width_builds(groups, width_mult):
    model = _build_meta(f"shufflenet_v1_g{groups}", width_mult=width_mult)
    for unit in model.modules():
        if isinstance(unit, ShuffleUnit):
            for conv in (unit.compress[0], unit.expand[0]):
                assert conv.in_channels % conv.groups == 0
                assert conv.out_channels % groups == 0
    with torch.device("meta"):
        assert model(torch.empty(2, 3, 32, 32)).shape == (2, 1000)


@pytest.mark.parametrize(("name", "width_mult"), [("x0_5", 0.5), ("x1_5", 1.5), ("x2_0", 2.0)])
def test_named_width_builders_match_the_kwarg(name, width_mult):
    named = _build_meta(f"shufflenet_v1_g3_{name}")
    by_kwarg = _build_meta("shufflenet_v1_g3", width_mult=width_mult)
    assert [p.shape for p in named.parameters()] == [p.shape for p in by_kwarg.parameters()]


def test_only_the_first_pointwise_layer_is_not_grouped():
    model = _build_meta("shufflenet_v1_g3")
    units = [m for m in model.modules() if isinstance(m, ShuffleUnit)]
    assert units[0].compress[0].groups == 1
    assert all(u.compress[0].groups == 3 for u in units[1:])
    assert all(u.expand[0].groups == 3 for u in units)
    assert all(u.depthwise[0].groups == u.depthwise[0].in_channels for u in units)
    # Bottleneck: a quarter of the unit's output channels.
    assert units[0].compress[0].out_channels == 60


def test_stride_2_unit_concatenates_the_average_pooled_input():
    torch.manual_seed(0)
    unit = ShuffleUnit(24, 240, groups=3, stride=2, group_first_conv=False).eval()
    x = torch.relu(torch.randn(2, 24, 8, 8))  # unit inputs come out of a ReLU
    out = unit(x)
    assert out.shape == (2, 240, 4, 4)
    pooled = nn.functional.avg_pool2d(x, 3, stride=2, padding=1)
    torch.testing.assert_close(out[:, :24], pooled)


def test_stride_1_unit_adds_its_input():
    torch.manual_seed(0)
    unit = ShuffleUnit(24, 24, groups=3, stride=1).eval()
    x = torch.randn(2, 24, 6, 6)
    branch = unit.expand(unit.depthwise(unit.shuffle(unit.compress(x))))
    torch.testing.assert_close(unit(x), torch.relu(x + branch))


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    # Groups [0 1 2] [3 4 5] -> reshape (2, 3), transpose, flatten.
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    x = torch.randn(2, 12, 3, 3)
    reference = x.reshape(2, 3, 4, 3, 3).transpose(1, 2).reshape(2, 12, 3, 3)
    torch.testing.assert_close(ChannelShuffle(3)(x), reference)
    assert ChannelShuffle(3).summary_note() == "(g, C/g) → (C/g, g), g=3"


def test_shuffle_lets_every_output_group_see_every_input_group():
    # Two stacked group convs without a shuffle keep the groups apart; with it they mix.
    def mixing(shuffle: bool) -> torch.Tensor:
        torch.manual_seed(0)
        first, second = nn.Conv2d(9, 9, 1, groups=3), nn.Conv2d(9, 9, 1, groups=3)
        layers = [first, ChannelShuffle(3), second] if shuffle else [first, second]
        jacobian = torch.autograd.functional.jacobian(
            nn.Sequential(*layers), torch.randn(1, 9, 1, 1)
        )
        return jacobian.reshape(9, 9) != 0  # [output channel, input channel]

    assert not mixing(False)[0:3, 3:].any()  # output group 0 sees only input group 0
    sees = mixing(True)[0:3].reshape(3, 3, 3).any(dim=(0, 2))  # per input group
    assert sees.all()  # output group 0 sees all three input groups


def test_make_divisible():
    assert make_divisible(60, 3) == 60
    assert make_divisible(12, 8) == 16
    assert make_divisible(34, 4) == 36
    assert make_divisible(10, 8) == 16  # 8 would lose more than 10%


def test_forward_backward_small_batch():
    torch.manual_seed(0)
    model = create_model("shufflenet_v1_g8", width_mult=0.5, num_classes=5, in_chans=1)
    assert model.default_input_size == (1, 224, 224)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_registered_with_paper():
    expected = {f"shufflenet_v1_g{g}" for g in TABLE_1} | {
        "shufflenet_v1_g3_x0_5",
        "shufflenet_v1_g3_x1_5",
        "shufflenet_v1_g3_x2_0",
    }
    assert expected == set(list_models("shufflenet_v1*"))
    entry = model_entry("shufflenet_v1_g3")
    assert entry.paper == "Zhang et al. 2017" and entry.family == "shufflenet"
    assert "Table" in entry.builder.__doc__


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"groups": 5}, "groups g in"), ({"width_mult": 0}, "width_mult")],
)
def test_bad_configuration_raises_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ShuffleNetV1(**kwargs)
