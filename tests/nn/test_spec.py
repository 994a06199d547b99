"""Sequential spec strings: the lectures' networks in one line, and errors that point."""

import re

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnnlab import build_spec
from cnnlab.errors import CnnlabError, ConfigError, GeometryError, SpecError
from cnnlab.nn.spec import LAYER_WORDS, looks_like_spec
from cnnlab.nn.spec_grammar import GRAMMAR

LENET_SHAPE = "[conv6k5-pool2]x2-conv120k5-fc84-fc10"
LENET5 = "conv6k5-pool2-conv16k5-pool2-conv120k5-fc84-fc10"
VGG16 = (
    "[conv64k3p1]x2-pool2-[conv128k3p1]x2-pool2-[conv256k3p1]x3-pool2-[conv512k3p1]x3-pool2-"
    "[conv512k3p1]x3-pool2-fc4096-fc4096-fc1000"
)


def _param_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in model.parameters()]


def test_vgg16_spec_has_torchvision_vgg16_parameters():
    with torch.device("meta"):
        spec = build_spec(VGG16)
        reference = torchvision.models.vgg16()
    assert _param_shapes(spec) == _param_shapes(reference)
    assert sum(p.numel() for p in spec.parameters()) == 138_357_544
    assert spec.default_input_size == (3, 224, 224)


def test_lenet5_spec_matches_the_hand_built_network():
    spec = build_spec(LENET5, input_size=(1, 32, 32))
    reference = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    assert [type(m) for m in spec] == [type(m) for m in reference]
    assert _param_shapes(spec) == _param_shapes(reference)
    # 61,706: LeNet-5 with a fully connected C3 (156 + 2,416 + 48,120 + 10,164 + 850).
    assert sum(p.numel() for p in spec.parameters()) == 61_706
    assert spec(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_repetition_expands_groups():
    spec = build_spec(LENET_SHAPE, input_size=(1, 32, 32))
    assert list(spec._modules) == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "flatten",
        "fc1", "relu4", "fc2",
    ]  # fmt: skip
    assert spec.conv2.in_channels == 6 and spec.fc1.in_features == 120
    nested = build_spec("[[conv4k3p1]x2-pool2]x3-fc10", input_size=(3, 32, 32))
    assert sum(isinstance(m, nn.Conv2d) for m in nested) == 6
    assert nested.fc1.in_features == 4 * 4 * 4


def test_options_build_the_layers_they_name():
    spec = build_spec(
        "conv32k3s2p1-bn-conv32k3p2d2g32-maxpool3s2p1-avgpool2-gap-fc100-dropout0.3-fc10",
        input_size=(3, 64, 64),
    )
    assert spec.conv1.stride == (2, 2) and spec.conv1.padding == (1, 1)
    assert spec.conv2.groups == 32 and spec.conv2.dilation == (2, 2)
    assert isinstance(spec.bn1, nn.BatchNorm2d)
    assert (spec.pool1.kernel_size, spec.pool1.stride, spec.pool1.padding) == (3, 2, 1)
    assert isinstance(spec.avgpool1, nn.AvgPool2d) and isinstance(spec.gap1, nn.AdaptiveAvgPool2d)
    assert spec.dropout1.p == 0.3 and spec.fc1.in_features == 32
    assert spec(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


def test_default_relus_follow_bn_and_skip_the_classifier():
    spec = build_spec("conv8-bn-pool2-fc20-bn-fc10", input_size=(3, 16, 16))
    assert [type(m).__name__ for m in spec] == [
        "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten",
        "Linear", "BatchNorm1d", "ReLU", "Linear",
    ]  # fmt: skip


def test_named_activations_are_taken_literally():
    spec = build_spec("conv6k5-tanh-avgpool2-conv16k5-sigmoid-fc10", input_size=(1, 32, 32))
    assert [type(m).__name__ for m in spec] == [
        "Conv2d", "Tanh", "AvgPool2d", "Conv2d", "Sigmoid", "Flatten", "Linear",
    ]  # fmt: skip


def test_spec_is_case_and_space_tolerant():
    assert _param_shapes(build_spec(" Conv6K5 - POOL2 ", input_size=(1, 8, 8))) == [
        (6, 1, 5, 5),
        (6,),
    ]


# (spec, 1-based position of the offending place, words in the message)
MALFORMED = [
    ("conv6k5-pol2", 9, "did you mean pool"),
    ("[conv6k5-pool2]-fc10", 15, "repeat count"),
    ("conv6k5--fc10", 9, "expected a layer"),
    ("conv6k5]x2", 8, "no matching '['"),
    ("conv6k5 fc10", 9, "joined by '-'"),
    ("conv6k5-", 9, "ends where a layer"),
    ("fc10-conv3", 6, "after fc"),
    ("conv5g2", 1, "groups must divide"),
    ("[conv6k5-pool2", 1, "never closed"),
    ("conv6k5-pool2#", 14, "unexpected character"),
    ("conv6k3k5", 1, "repeated or unknown option"),
    ("[conv6]x0", 7, "at least once"),
    ("pool4p3", 1, "padding <= k/2"),
    ("dropout1.5", 1, "between 0 and 1"),
]


@pytest.mark.parametrize(("spec", "position", "words"), MALFORMED)
def test_malformed_specs_point_at_the_offending_token(spec, position, words):
    with pytest.raises(SpecError) as caught:
        build_spec(spec, input_size=(1, 32, 32))
    message = str(caught.value)
    assert words in message and f"position {position} " in message
    marked = re.search(r"spec '(.*)', position", message).group(1)
    assert marked.index("^") == position - 1  # the caret stands just before the offender
    assert marked.replace("^", "", 1) == spec.lower()
    assert "\n" not in message


def test_empty_spec_and_contradictory_channels():
    with pytest.raises(SpecError, match="empty"):
        build_spec("   ")
    with pytest.raises(ConfigError, match="in_chans"):
        build_spec("conv4", in_chans=1, input_size=(3, 8, 8))
    with pytest.raises(ConfigError, match=r"\(C, H, W\)"):
        build_spec("conv4", input_size=(3, 8))


def test_too_small_input_names_the_layer():
    with pytest.raises(
        GeometryError, match=r"'conv120k5' \(position 19 of the spec\).*120×0×0 from 6×4×4"
    ):
        build_spec(LENET_SHAPE, input_size=(1, 28, 28))


def test_grammar_text_names_every_layer_word():
    assert all(word in GRAMMAR for word in LAYER_WORDS)
    assert looks_like_spec(LENET_SHAPE) and looks_like_spec("relu") and looks_like_spec("fc10")
    assert looks_like_spec("dropout-fc10") and looks_like_spec("conv8k3s3")
    assert not looks_like_spec("vgg16") and not looks_like_spec("resnet50")


# -- property tests -------------------------------------------------------------------------

_SHAPE_KEEPING = st.sampled_from(["conv{c}k3p1", "conv{c}k1", "conv{c}k5p2", "bn", "dropout"])


@st.composite
def _valid_specs(draw):
    """A random valid spec, and how many convs, pools and fcs it builds."""
    counts = {"conv": 0, "pool": 0, "fc": 0}
    items = []
    for _ in range(draw(st.integers(1, 4))):
        group = []
        for _ in range(draw(st.integers(1, 3))):
            word = draw(_SHAPE_KEEPING).format(c=draw(st.integers(1, 8)))
            group.append(word)
        repeat = draw(st.integers(1, 3))
        pooled = draw(st.booleans()) and counts["pool"] < 3
        if draw(st.booleans()):
            items.append(f"[{'-'.join(group)}]x{repeat}")
        else:
            items.extend(group * repeat)
        counts["conv"] += sum(word.startswith("conv") for word in group) * repeat
        if pooled:
            items.append(draw(st.sampled_from(["pool2", "avgpool2", "maxpool3s2p1"])))
            counts["pool"] += 1
    for _ in range(draw(st.integers(0, 3))):
        items.append(f"fc{draw(st.integers(1, 30))}")
        counts["fc"] += 1
    return "-".join(items), counts


@settings(max_examples=60, deadline=None)
@given(_valid_specs())
def test_valid_specs_build_with_the_layers_they_name(generated):
    spec, counts = generated
    with torch.device("meta"):
        model = build_spec(spec, input_size=(3, 32, 32))
    assert sum(isinstance(m, nn.Conv2d) for m in model) == counts["conv"]
    assert sum(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model) == counts["pool"]
    assert sum(isinstance(m, nn.Linear) for m in model) == counts["fc"]
    out = model(torch.empty(2, 3, 32, 32, device="meta"))
    expected_last = int(spec.rsplit("fc", 1)[1]) if counts["fc"] else None
    if expected_last is not None:
        assert out.shape == (2, expected_last)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="convpoolfcgapbnreludrt0123456789ksdgx.-[] ", max_size=30))
def test_garbage_raises_spec_errors_only(text):
    try:
        with torch.device("meta"):
            model = build_spec(text, input_size=(3, 32, 32))
    except (SpecError, GeometryError):
        return
    except CnnlabError as error:  # any other CnnlabError would be a wrong kind of error
        pytest.fail(f"{text!r} raised {type(error).__name__}: {error}")
    assert isinstance(model, nn.Sequential) and len(model) > 0
