"""MobileNet v1 against the paper's Tables 6 and 7 (Howard et al. 2017)."""

import pytest
import torch
from model_checks import n_params, torch_macs

from cnnlab.errors import ConfigError
from cnnlab.models import create_model, list_models, model_entry
from cnnlab.models.mobilenet import MobileNetV1
from cnnlab.models.resolve import create_on_meta
from cnnlab.nn.separable import SeparableConv2d, separable_cost_ratio

# Howard et al. 2017, Table 6 (width multiplier α, 224×224) and Table 7 (resolution multiplier
# ρ, α=1): millions of parameters and of mult-adds, as printed.
PAPER_TABLES = [
    # (builder, kwargs, input side, params (M), mult-adds (M))
    ("mobilenet_v1", {}, 224, 4.2, 569),
    ("mobilenet_v1_075", {}, 224, 2.6, 325),
    ("mobilenet_v1_050", {}, 224, 1.3, 149),
    ("mobilenet_v1_025", {}, 224, 0.5, 41),
    ("mobilenet_v1", {"resolution_mult": 192 / 224}, 192, 4.2, 418),
    ("mobilenet_v1", {"resolution_mult": 160 / 224}, 160, 4.2, 290),
    ("mobilenet_v1", {"resolution_mult": 128 / 224}, 128, 4.2, 186),
]

# Exact parameter counts of an independent implementation (osmr/imgclsmob model table:
# "MobileNet x1.0 ... 4,231,976" etc.).
IMGCLSMOB_PARAMS = {
    "mobilenet_v1": 4_231_976,
    "mobilenet_v1_075": 2_585_560,
    "mobilenet_v1_050": 1_331_592,
    "mobilenet_v1_025": 470_072,
}


@pytest.mark.parametrize(("name", "kwargs", "side", "params_m", "macs_m"), PAPER_TABLES)
def test_params_and_mult_adds_match_the_paper(name, kwargs, side, params_m, macs_m):
    model = create_on_meta(name, **kwargs)
    assert model.default_input_size == (3, side, side)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == params_m
    # Printed to the nearest million; allow one unit of the last printed digit.
    assert abs(torch_macs(model) / 1e6 - macs_m) < 1.0


@pytest.mark.parametrize(("name", "kwargs", "side", "params_m", "macs_m"), PAPER_TABLES)
def test_summary_reports_the_papers_mult_adds(name, kwargs, side, params_m, macs_m):
    from cnnlab.sizing import summary

    report = summary(create_model(name, **kwargs))
    assert abs(report.macs / 1e6 - macs_m) < 1.0
    assert round(report.total_params / 1e6, 1) == params_m


@pytest.mark.parametrize(("name", "params"), IMGCLSMOB_PARAMS.items())
def test_exact_params_match_an_independent_implementation(name, params):
    assert n_params(create_on_meta(name)) == params


def test_width_multiplier_scales_cost_by_about_alpha_squared():
    # Only roughly: the stem's input and the classifier's output do not shrink with α.
    full = torch_macs(create_on_meta("mobilenet_v1"))
    for alpha in (0.75, 0.5, 0.25):
        ratio = torch_macs(create_on_meta("mobilenet_v1", width_mult=alpha)) / full
        assert alpha**2 < ratio < 1.2 * alpha**2


def test_width_kwarg_and_named_builders_agree():
    for name, alpha in [("mobilenet_v1_075", 0.75), ("mobilenet_v1_050", 0.5)]:
        named = create_on_meta(name)
        by_kwarg = create_on_meta("mobilenet_v1", width_mult=alpha)
        shapes = [p.shape for p in named.parameters()]
        assert shapes == [p.shape for p in by_kwarg.parameters()]


def test_architecture_follows_table_1():
    with torch.device("meta"):
        model = MobileNetV1()
    blocks = [m for m in model.features if isinstance(m, SeparableConv2d)]
    assert len(blocks) == 13
    stem = model.features[0][0]
    assert stem.out_channels == 32 and stem.stride == (2, 2) and stem.kernel_size == (3, 3)
    widths = [b.out_channels for b in blocks]
    assert widths == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    strides = [b.depthwise[0].stride[0] for b in blocks]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    # After the 224×224 input: 7×7×1024 before the average pool.
    with torch.device("meta"):
        assert model.features(torch.empty(1, 3, 224, 224)).shape == (1, 1024, 7, 7)


def test_separable_blocks_show_the_cost_ratio_in_their_note():
    model = MobileNetV1()
    first = model.features[1]
    assert first.summary_note() == "separable/standard = 1/N + 1/D_K² = 1/64 + 1/9 = 0.127"
    last = model.features[-1]
    assert last.summary_note().endswith("1/1024 + 1/9 = 0.112")
    assert last.cost_ratio() == separable_cost_ratio(1024, 3)


def test_summary_shows_the_cost_ratio_note():
    from cnnlab.sizing import summary

    notes = [row.note for row in summary("mobilenet_v1").rows]
    assert "separable/standard = 1/N + 1/D_K² = 1/64 + 1/9 = 0.127" in notes


def test_forward_backward_small_batch():
    torch.manual_seed(0)
    model = create_model("mobilenet_v1_025", num_classes=7, in_chans=1)
    assert model.default_input_size == (1, 224, 224)
    x = torch.randn(2, 1, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_builds_on_meta_device():
    model = create_on_meta("mobilenet_v1")
    assert all(p.is_meta for p in model.parameters())


def test_registered_with_paper():
    assert {"mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"} <= set(
        list_models("mobilenet_v1*")
    )
    entry = model_entry("mobilenet_v1")
    assert entry.paper == "Howard et al. 2017" and entry.family == "mobilenet"
    assert "Table" in entry.builder.__doc__


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width_mult": 0}, "width_mult"),
        ({"width_mult": 0.01}, "width_mult"),
        ({"resolution_mult": 0.1}, "resolution_mult"),
    ],
)
def test_bad_multipliers_raise_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_model("mobilenet_v1", **kwargs)
