"""SqueezeNet 1.0 and 1.1: the paper's Table 1, torchvision compatibility, Fire modules."""

import pytest
import torch
import torchvision
from model_checks import n_params, on_meta, output_shapes, torch_macs

from cnnlab.errors import UnknownNameError
from cnnlab.models import create_model
from cnnlab.models.squeezenet import Fire, SqueezeNet, squeezenet1_0, squeezenet1_1

BUILDERS = {"squeezenet1_0": squeezenet1_0, "squeezenet1_1": squeezenet1_1}

# torchvision 0.2x, SqueezeNet1_0/1_1_Weights.IMAGENET1K_V1.meta: num_params, "_ops" (GMACs at
# 224x224) and min_size. The lecture's model table (shared/seeds/001_d61e5c94ff303ee0.txt)
# prints 1.25M and 1.24M parameters.
TORCHVISION = {
    "squeezenet1_0": {"params": 1_248_424, "gmacs": 0.819, "min_size": 21, "lecture_m": 1.25},
    "squeezenet1_1": {"params": 1_235_496, "gmacs": 0.349, "min_size": 17, "lecture_m": 1.24},
}

# Iandola et al. 2016, Table 1 ("SqueezeNet architectural dimensions"): output size and
# "#parameter before pruning" per layer, with torchvision's module path. The output sizes hold
# for a 227x227 input (the released Caffe model's crop, our default); the table's header says
# 224x224, which would give 109x109 after conv1.
PAPER_TABLE1 = {
    # name: (module path, output (C, H, W), parameters)
    "conv1": ("features.0", (96, 111, 111), 14_208),
    "maxpool1": ("features.2", (96, 55, 55), 0),
    "fire2": ("features.3", (128, 55, 55), 11_920),
    "fire3": ("features.4", (128, 55, 55), 12_432),
    "fire4": ("features.5", (256, 55, 55), 45_344),
    "maxpool4": ("features.6", (256, 27, 27), 0),
    "fire5": ("features.7", (256, 27, 27), 49_440),
    "fire6": ("features.8", (384, 27, 27), 104_880),
    "fire7": ("features.9", (384, 27, 27), 111_024),
    "fire8": ("features.10", (512, 27, 27), 188_992),
    "maxpool8": ("features.11", (512, 13, 13), 0),
    "fire9": ("features.12", (512, 13, 13), 197_184),
    "conv10": ("classifier.1", (1000, 13, 13), 513_000),
}
PAPER_TOTAL_PARAMS = 1_248_424


@pytest.mark.parametrize("name", BUILDERS)
def test_loads_torchvision_weights_and_matches_its_outputs(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None)
    model = on_meta(BUILDERS[name]).to_empty(device="cpu")
    model.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) == TORCHVISION[name]["params"]
    assert round(count / 1e6, 2) == TORCHVISION[name]["lecture_m"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model.eval()(x), reference.eval()(x)
    assert theirs.abs().max() > 1e-4
    assert (ours - theirs).abs().max() < 1e-5


def test_squeezenet1_0_follows_table1():
    model = on_meta(squeezenet1_0).eval()
    assert model.default_input_size == (3, 227, 227)
    for name, (path, _, params) in PAPER_TABLE1.items():
        assert n_params(model.get_submodule(path)) == params, name
    paths = {name: row[0] for name, row in PAPER_TABLE1.items()} | {"logits": ""}
    assert output_shapes(model, paths, (3, 227, 227)) == {
        name: row[1] for name, row in PAPER_TABLE1.items()
    } | {"logits": (1000,)}
    assert sum(row[2] for row in PAPER_TABLE1.values()) == PAPER_TOTAL_PARAMS


def macs(name: str, side: int = 224) -> int:
    return torch_macs(on_meta(BUILDERS[name]), (3, side, side))


@pytest.mark.parametrize("name", BUILDERS)
def test_macs_match_torchvision(name):
    assert round(macs(name) / 1e9, 3) == TORCHVISION[name]["gmacs"]


@pytest.mark.parametrize("name", BUILDERS)
def test_summary_sizes_them_like_torchvision(name):
    from cnnlab.sizing import GeometryWarning, summary

    with pytest.warns(GeometryWarning, match="drops the last"):  # why the default is 227
        report = summary(name, input_size=(3, 224, 224))
    assert report.total_params == TORCHVISION[name]["params"]
    assert round(report.macs / 1e9, 3) == TORCHVISION[name]["gmacs"]


@pytest.mark.parametrize("name", BUILDERS)
def test_forward_and_backward_at_the_smallest_input(name):
    side = TORCHVISION[name]["min_size"]
    model = create_model(name, num_classes=7, in_chans=1).train()
    out = model(torch.randn(2, 1, side, side))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert model.features[0].weight.grad is not None
    assert model.default_input_size == (1, 227, 227)


@pytest.mark.parametrize("name", BUILDERS)
def test_builds_on_meta(name):
    model = on_meta(create_model, name=name)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.default_input_size == (3, 227, 227)


def test_squeezenet1_1_is_the_cheaper_revision():
    # The authors' release notes: 1.1 has 2.4x less computation than 1.0 and fewer parameters
    # (conv and fc multiply-adds give 2.35x at 224x224 and 2.15x at 227x227).
    for side in (224, 227):
        assert macs("squeezenet1_0", side) > 2 * macs("squeezenet1_1", side)
    v10, v11 = on_meta(squeezenet1_0), on_meta(squeezenet1_1)
    assert sum(p.numel() for p in v11.parameters()) < sum(p.numel() for p in v10.parameters())
    assert (v10.features[0].kernel_size, v11.features[0].kernel_size) == ((7, 7), (3, 3))


def test_fire_module_squeezes_then_expands():
    fire = Fire(96, 16, 64, 64)
    assert fire.summary_note() == "squeeze 16 -> expand 64 1x1 + 64 3x3"
    assert fire(torch.randn(1, 96, 9, 9)).shape == (1, 128, 9, 9)
    assert fire.out_channels == 128


def test_unknown_version_is_explained():
    with pytest.raises(UnknownNameError, match="Did you mean 1_1"):
        SqueezeNet("1_2")
