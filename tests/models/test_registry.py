"""The model registry: names, wildcards, metadata and the unknown-name error."""

import pytest
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError, ConfigError, UnknownNameError
from cnnlab.models import _registry
from cnnlab.models._registry import natural_key, register_model


@pytest.fixture
def scratch_registry(monkeypatch):
    """An empty registry, so these tests don't depend on (or pollute) the real zoo."""
    monkeypatch.setattr(_registry, "_REGISTRY", {})
    monkeypatch.setattr(_registry, "_ensure_families_loaded", lambda: None)
    return _registry._REGISTRY


class _Tiny(nn.Module):
    def __init__(self, num_classes=10, in_chans=3, width=4):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, width, 3)
        self.fc = nn.Linear(width, num_classes)


def test_register_and_create_passes_only_given_arguments(scratch_registry):
    @register_model(input_size=(3, 8, 8), paper="Nobody et al. 2001")
    def tiny(*, num_classes=7, in_chans=3, **kw):
        return _Tiny(num_classes, in_chans, **kw)

    model = _registry.create_model("tiny")
    assert model.fc.out_features == 7  # the builder's own default survives
    model = _registry.create_model("TINY", num_classes=3, in_chans=1, width=5)
    assert (model.fc.out_features, model.conv.in_channels, model.conv.out_channels) == (3, 1, 5)
    entry = scratch_registry["tiny"]
    assert (entry.family, entry.year) == ("test_registry", 2001)


def test_wildcards_and_natural_order(scratch_registry):
    for name in ["resnet110", "resnet20", "resnet56", "vgg16"]:
        register_model(input_size=(3, 8, 8), paper="x")(_named_builder(name))
    assert _registry.list_models("resnet*") == ["resnet20", "resnet56", "resnet110"]
    assert _registry.list_models("*16") == ["vgg16"]
    assert _registry.list_models("nothing*") == []
    assert natural_key("resnet20") < natural_key("resnet110")


def _named_builder(name):
    def builder(**kw):
        return _Tiny(**kw)

    builder.__name__ = name
    return builder


def test_unknown_name_suggests_nearest(scratch_registry):
    for name in ["vgg16", "vgg16_bn", "vgg19"]:
        register_model(input_size=(3, 8, 8), paper="x")(_named_builder(name))
    with pytest.raises(UnknownNameError) as info:
        _registry.create_model("vgg16bn")
    message = str(info.value)
    assert "vgg16_bn" in message and "cnnlab models" in message
    assert isinstance(info.value, CnnlabError) and "\n" not in message


def test_double_registration_of_a_different_builder_is_refused(scratch_registry):
    register_model(input_size=(3, 8, 8), paper="x")(_named_builder("dup"))
    with pytest.raises(ValueError, match="registered twice"):
        register_model(input_size=(3, 8, 8), paper="x")(_named_builder("dup"))


def test_public_api_reexports():
    assert cnnlab.create_model is _registry.create_model
    assert cnnlab.list_models is _registry.list_models
    with pytest.raises(AttributeError):
        cnnlab.no_such_thing  # noqa: B018


def test_unknown_builder_option_is_a_config_error(scratch_registry):
    @register_model(input_size=(3, 8, 8), paper="x")
    def tiny2(*, num_classes=7, in_chans=3):
        return _Tiny(num_classes, in_chans)

    with pytest.raises(ConfigError, match="takes no option 'widht'"):
        _registry.create_model("tiny2", widht=3)


def test_the_entry_describes_every_model_it_builds(scratch_registry):
    def side(options):  # an option that changes the input, as MobileNet's resolution does
        return (3, options.get("side", 8), options.get("side", 8))

    @register_model(input_size=side, paper="x", default_loss="lenet_rbf", aux_loss_weight=0.5)
    def tiny3(*, num_classes=7, in_chans=3, side=8, **kw) -> _Tiny:
        return _Tiny(num_classes, in_chans, **kw)

    for model in (_registry.create_model("tiny3", in_chans=1, side=16), tiny3(in_chans=1, side=16)):
        assert model.default_input_size == (1, 16, 16)  # C is in_chans, H and W the rule's
        assert (model.default_loss, model.aux_loss_weight) == ("lenet_rbf", 0.5)
    assert scratch_registry["tiny3"].default_input_size({}) == (3, 8, 8)


def test_options_passed_on_are_checked_against_the_returned_class(scratch_registry):
    @register_model(input_size=(3, 8, 8), paper="x")
    def tiny4(*, num_classes=7, in_chans=3, **kw) -> _Tiny:
        return _Tiny(num_classes, in_chans, **kw)

    assert tiny4(width=6).conv.out_channels == 6
    with pytest.raises(ConfigError) as info:
        _registry.create_model("tiny4", widht=6)
    assert str(info.value) == (
        "model 'tiny4' takes no option 'widht'; it takes num_classes, in_chans, width"
    )


def test_a_model_is_registered_with_its_input_size(scratch_registry):
    with pytest.raises(TypeError, match="input_size"):
        register_model(_named_builder("no_size"))
    with pytest.raises(TypeError, match="input_size"):
        register_model(paper="x")
