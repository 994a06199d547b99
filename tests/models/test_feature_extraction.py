"""Feature extraction by the names ``cnnlab summary`` prints, for every model of the zoo."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

import cnnlab
from cnnlab.errors import ConfigError, UnknownNameError
from cnnlab.models import feature_extractor
from cnnlab.models.features import features_only
from cnnlab.models.resolve import resolve_model


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_every_layer_of_every_model_by_its_summary_name(name):
    model, _, input_size = resolve_model(name, None)  # built on the meta device
    model.eval()
    rows = [r for r in cnnlab.summary(model, input_size).rows[1:] if r.output_shape]
    names = [row.name for row in rows]
    assert len(names) == len(set(names)), "summary row names must be unique"
    maps = feature_extractor(model, names)(torch.empty(2, *input_size, device="meta"))
    assert list(maps) == names
    for row in rows:
        assert tuple(maps[row.name].shape) == (2, *row.output_shape), row.name


def test_a_reused_module_is_named_per_call_as_summary_names_it():
    model = cnnlab.create_model("resnet18").eval()
    rows = [row.name for row in cnnlab.summary(model).rows]
    assert rows.count("layer1.0.relu") == 1 and rows.count("layer1.0.relu:2") == 1
    x = torch.randn(1, 3, 64, 64)
    maps = feature_extractor(model, ["layer1.0.relu", "layer1.0.relu:2", "layer1.0"])(x)
    # torchvision's BasicBlock: relu after bn1 (call 1), relu after the addition (call 2)
    reference = create_feature_extractor(
        torchvision.models.resnet18().eval(), ["layer1.0.relu", "layer1.0.relu_1", "layer1.0"]
    )
    reference.load_state_dict(model.state_dict(), strict=False)
    expected = reference(x)
    torch.testing.assert_close(maps["layer1.0.relu"], expected["layer1.0.relu"])
    torch.testing.assert_close(maps["layer1.0.relu:2"], expected["layer1.0.relu_1"])
    torch.testing.assert_close(maps["layer1.0.relu:2"], maps["layer1.0"])


def test_maps_equal_the_models_own_intermediates():
    torch.manual_seed(0)
    model = cnnlab.create_model("vgg11").eval()
    x = torch.randn(1, 3, 64, 64)
    maps = feature_extractor(model, ["features.2", "features"])(x)
    with torch.no_grad():
        torch.testing.assert_close(maps["features.2"], model.features[:3](x))
        torch.testing.assert_close(maps["features"], model.features(x))


def test_the_forward_pass_stops_once_every_layer_is_seen():
    model = cnnlab.create_model("lenet5").eval()
    seen = []
    model.classifier.f6.register_forward_hook(lambda *args: seen.append("f6"))
    maps = feature_extractor(model, ["features.c1"])(torch.randn(1, 1, 32, 32))
    assert maps["features.c1"].shape == (1, 6, 28, 28) and seen == []
    model(torch.randn(1, 1, 32, 32))
    assert seen == ["f6"]  # the hook works: the extractor's pass never reached f6


def test_wrong_names_are_one_line_errors():
    model = cnnlab.create_model("resnet18")
    with pytest.raises(UnknownNameError, match="layer1.0.relu"):
        feature_extractor(model, ["layer1.0.rlu"])
    with pytest.raises(ConfigError, match="called 2 times"):
        feature_extractor(model.eval(), ["layer1.0.relu:3"])(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_features_only_gives_a_pyramid_for_every_model(name):
    model, _, input_size = resolve_model(name, None)
    pyramid = features_only(model.eval())
    reductions = [stage.reduction for stage in pyramid.feature_info]
    assert len(reductions) >= 2 and reductions == sorted(set(reductions))
    maps = pyramid(torch.empty(1, *input_size, device="meta"))
    for stage in pyramid.feature_info:  # a block's row is shown at its nesting depth
        depth = stage.name.split(":")[0].count(".") + 1
        rows = {row.name: row for row in cnnlab.summary(model, input_size, depth=depth).rows}
        assert tuple(maps[stage.name].shape[1:]) == rows[stage.name].output_shape
        assert maps[stage.name].shape[1] == stage.channels


def test_feature_levels_are_timms_for_resnet_and_inception():
    # timm's feature_info for these (torchvision's module names): the stem's ReLU and the four
    # stages; Inception-v3's last layer before each stride-2 step
    resnet = cnnlab.create_model("resnet50", features_only=True)
    assert [s.name for s in resnet.feature_info] == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert [s.reduction for s in resnet.feature_info] == [2, 4, 8, 16, 32]
    inception = features_only(resolve_model("inception_v3", None)[0], out_indices=(-3, -2, -1))
    assert [s.name for s in inception.feature_info] == ["Mixed_5d", "Mixed_6e", "Mixed_7c"]
    assert [s.channels for s in inception.feature_info] == [288, 768, 2048]
    with pytest.raises(ConfigError, match="do not index the 5 feature stages"):
        cnnlab.create_model("resnet18", features_only=True, out_indices=(5,))
