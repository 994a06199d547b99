"""summary() against independent counts: torchvision's published figures, the lectures' tables,
torch's own FLOP counter, and hand-computed toy networks."""

import copy
import json
import re
import warnings

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.errors import ConfigError, GeometryError, UnknownNameError
from cnnlab.sizing import GeometryWarning, ModelSummary, padding_for_mode, summary

NO_AUX = {"aux_logits": False, "init_weights": False}  # GoogLeNet as published: no aux heads

# torchvision's weights metadata: "_ops" is GMACs at 224×224 (299×299 for Inception v3), as
# published in torchvision's model docs ("GFLOPS" column), and "num_params"; "min_size" is the
# smallest input each model accepts.
TORCHVISION_REFERENCES = [
    # (model, builder kwargs, input size, weights enum member)
    ("resnet18", {}, (3, 224, 224), "ResNet18_Weights.IMAGENET1K_V1"),
    ("resnet50", {}, (3, 224, 224), "ResNet50_Weights.IMAGENET1K_V1"),
    ("vgg16", {}, (3, 224, 224), "VGG16_Weights.IMAGENET1K_V1"),
    ("alexnet", {}, (3, 224, 224), "AlexNet_Weights.IMAGENET1K_V1"),
    ("googlenet", NO_AUX, (3, 224, 224), "GoogLeNet_Weights.IMAGENET1K_V1"),
    ("mobilenet_v2", {}, (3, 224, 224), "MobileNet_V2_Weights.IMAGENET1K_V1"),
    ("densenet121", {}, (3, 224, 224), "DenseNet121_Weights.IMAGENET1K_V1"),
    ("squeezenet1_0", {}, (3, 224, 224), "SqueezeNet1_0_Weights.IMAGENET1K_V1"),
    ("resnext50_32x4d", {}, (3, 224, 224), "ResNeXt50_32X4D_Weights.IMAGENET1K_V1"),
    ("shufflenet_v2_x1_0", {}, (3, 224, 224), "ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1"),
    ("inception_v3", {"init_weights": False}, (3, 299, 299), "Inception_V3_Weights.IMAGENET1K_V1"),
    # attention: nn.MultiheadAttention (ViT), F.linear on a module's weights (Swin), einsum (MaxViT)
    ("vit_b_16", {}, (3, 224, 224), "ViT_B_16_Weights.IMAGENET1K_V1"),
    ("swin_t", {}, (3, 224, 224), "Swin_T_Weights.IMAGENET1K_V1"),
    ("maxvit_t", {}, (3, 224, 224), "MaxVit_T_Weights.IMAGENET1K_V1"),
]  # fmt: skip


def _weights(path: str):
    enum_name, member = path.split(".")
    return getattr(getattr(torchvision.models, enum_name), member)


def _torchvision_on_meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.get_model(name, **kwargs)


@pytest.mark.parametrize(("name", "kwargs", "size", "weights"), TORCHVISION_REFERENCES)
def test_params_and_macs_match_torchvision_published_figures(name, kwargs, size, weights):
    meta = _weights(weights).meta
    model = _torchvision_on_meta(name, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)
        result = summary(model, size)
    assert round(result.macs / 1e9, 3) == pytest.approx(meta["_ops"], abs=0.0011)
    assert result.total_params == meta["num_params"]
    assert result.flops == 2 * result.macs


@pytest.mark.parametrize(
    ("name", "kwargs", "weights"),
    [
        ("vgg16", {}, "VGG16_Weights.IMAGENET1K_V1"),
        ("alexnet", {}, "AlexNet_Weights.IMAGENET1K_V1"),
        ("googlenet", NO_AUX, "GoogLeNet_Weights.IMAGENET1K_V1"),
        ("densenet121", {}, "DenseNet121_Weights.IMAGENET1K_V1"),
        ("squeezenet1_0", {}, "SqueezeNet1_0_Weights.IMAGENET1K_V1"),
        ("inception_v3", {"init_weights": False}, "Inception_V3_Weights.IMAGENET1K_V1"),
    ],
)  # fmt: skip
def test_too_small_input_names_the_layer_and_torchvision_min_size(name, kwargs, weights):
    model = _torchvision_on_meta(name, **kwargs)
    with pytest.raises(GeometryError) as caught:
        summary(model, (3, 8, 8))
    message = str(caught.value)
    side = int(re.search(r"smallest input that works is 3×(\d+)×\1", message).group(1))
    assert (side, side) == _weights(weights).meta["min_size"]
    assert re.search(r"layer '[\w.]+' \(\w+ ", message)
    summary(model, (3, side, side))  # and it does work


def test_too_small_input_names_the_first_empty_layer():
    model = _torchvision_on_meta("vgg16")
    with pytest.raises(GeometryError, match=r"layer 'features\.30' \(MaxPool2d 2×2, stride 2\)"):
        summary(model, (3, 16, 16))  # 16 -> 8 -> 4 -> 2 -> 1 -> the fifth pool is empty


# The lecture's VGG-16 table (seeds/001, "VGGNet"): output [HxWxC], memory, params without bias.
LECTURE_VGG16 = [
    ("conv", (64, 224, 224), 1_728),
    ("conv", (64, 224, 224), 36_864),
    ("pool", (64, 112, 112), 0),
    ("conv", (128, 112, 112), 73_728),
    ("conv", (128, 112, 112), 147_456),
    ("pool", (128, 56, 56), 0),
    ("conv", (256, 56, 56), 294_912),
    ("conv", (256, 56, 56), 589_824),
    ("conv", (256, 56, 56), 589_824),
    ("pool", (256, 28, 28), 0),
    ("conv", (512, 28, 28), 1_179_648),
    ("conv", (512, 28, 28), 2_359_296),
    ("conv", (512, 28, 28), 2_359_296),
    ("pool", (512, 14, 14), 0),
    ("conv", (512, 14, 14), 2_359_296),
    ("conv", (512, 14, 14), 2_359_296),
    ("conv", (512, 14, 14), 2_359_296),
    ("pool", (512, 7, 7), 0),
    ("fc", (4096,), 102_760_448),
    ("fc", (4096,), 16_777_216),
    ("fc", (1000,), 4_096_000),
]
LECTURE_VGG16_INPUT = 224 * 224 * 3  # "INPUT: [224x224x3] memory: 150K"
VGG16_PARAMS = 138_357_544  # Simonyan & Zisserman / torchvision VGG16_Weights num_params


def _lecture_rows(result: ModelSummary):
    kinds = {"Conv2d": "conv", "MaxPool2d": "pool", "Linear": "fc"}
    return [row for row in result.rows if row.type in kinds], kinds


@pytest.mark.parametrize("source", ["cnnlab", "torchvision"])
def test_vgg16_reproduces_the_lecture_table_row_by_row(source):
    result = (
        summary("vgg16")
        if source == "cnnlab"
        else summary(_torchvision_on_meta("vgg16"), (3, 224, 224))
    )
    rows, kinds = _lecture_rows(result)
    assert [(kinds[r.type], r.output_shape, r.activations) for r in rows] == [
        (kind, shape, _prod(shape)) for kind, shape, _ in LECTURE_VGG16
    ]
    weights_only = [r.params - (r.output_shape[0] if r.params else 0) for r in rows]
    assert weights_only == [params for _, _, params in LECTURE_VGG16]
    assert result.rows[0].activations == LECTURE_VGG16_INPUT
    assert result.total_params == VGG16_PARAMS
    # The lecture's rows add up to about 15.2M values (~61 MB); the adaptive average pool that
    # torchvision's VGG adds before the classifier is the only other counted output.
    lecture_total = LECTURE_VGG16_INPUT + sum(_prod(shape) for _, shape, _ in LECTURE_VGG16)
    extra = sum(r.activations for r in result.rows if r.type == "AdaptiveAvgPool2d")
    assert result.activation_elements == lecture_total + extra
    assert round(lecture_total / 1e6, 1) == 15.2
    assert 60 < result.activation_bytes / 1e6 < 62


def test_vgg16_counting_relu_outputs_too():
    result = summary("vgg16", all_activations=True)
    default = summary("vgg16")
    # Every conv and hidden fc is followed by a ReLU of its own size, and torchvision-style VGG
    # adds two dropouts of 4096: the difference is the lecture's conv outputs plus 4 × 4096.
    conv_outputs = sum(_prod(shape) for kind, shape, _ in LECTURE_VGG16 if kind == "conv")
    assert result.activation_elements - default.activation_elements == conv_outputs + 4 * 4096
    assert round(result.activation_elements / 1e6, 1) == pytest.approx(28.8, abs=0.15)
    assert "every layer's output" in result.convention


def _prod(shape):
    total = 1
    for s in shape:
        total *= s
    return total


def test_alexnet_conv1_is_55x55x96_with_35k_parameters():
    # seeds/000 AlexNet: 227×227×3 input, 96 filters 11×11 at stride 4 -> [55x55x96], then a
    # 3×3 pool at stride 2 -> [27x27x96]; conv1 has 11·11·3·96 = 34,848 weights + 96 biases.
    net = nn.Sequential(nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2))
    conv, _, pool = summary(net, (3, 227, 227)).rows[1:]
    assert conv.output_shape == (96, 55, 55) and conv.params == 34_848 + 96
    assert pool.output_shape == (96, 27, 27) and pool.params == 0
    assert conv.macs == 55 * 55 * 96 * (11 * 11 * 3)


# LeCun et al. 1998, Section II.B: trainable parameters and connections of LeNet-5's layers.
# A connection is a multiply-accumulate or a bias, so MACs = connections - output values.
LENET5_PAPER = {
    "c1": (156, 122_304),
    "c3": (1_516, 151_600),  # the partial connection table: 60 of 96 map pairs
    "c5": (48_120, 48_120),
    "f6": (10_164, 10_164),
}


def test_lenet5_layers_match_the_papers_parameters_and_connections():
    rows = {row.name.rsplit(".", 1)[-1]: row for row in summary("lenet5").rows}
    for layer, (params, connections) in LENET5_PAPER.items():
        row = rows[layer]
        assert row.params == params, layer
        assert row.macs + row.activations == connections, layer
    # Receptive fields through the custom subsampling and scaled tanh: 5, 6, 14, 16, 32.
    fields = [rows[name].receptive_field for name in ("c1", "s2", "c3", "s4", "c5")]
    assert fields == [(5, 5), (6, 6), (14, 14), (16, 16), (32, 32)]


def test_lecture_four_filters_of_4x4x3_on_32x32x3():
    # seeds/000: 4 filters 4×4×3 on 32×32×3, the "full" convolution: 35×35×4 outputs,
    # (4·4·3 + 1)·4 = 196 parameters; a 500-neuron fully connected layer: (32·32·3 + 1)·500.
    conv = nn.Conv2d(3, 4, 4, padding=padding_for_mode(4, "full"))
    row = summary(conv, (3, 32, 32)).rows[1]
    assert row.output_shape == (4, 35, 35) and row.activations == 4 * 35 * 35
    assert row.params == 196
    fc = summary(nn.Sequential(nn.Flatten(), nn.Linear(3072, 500)), (3, 32, 32))
    assert fc.total_params == (32 * 32 * 3 + 1) * 500


class Residual(nn.Module):
    def __init__(self, channels=8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


class DenseConcat(nn.Module):
    def __init__(self, channels=8, growth=4):
        super().__init__()
        self.a = nn.Conv2d(channels, growth, 3, padding=1)
        self.b = nn.Conv2d(channels + growth, growth, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def summary_note(self):
        return "k0 + k(l-1) input maps"

    def forward(self, x):
        x = torch.cat([x, self.a(x)], 1)
        return self.pool(torch.cat([x, self.b(x)], 1))


class Branches(nn.Module):
    """Inception-like: parallel branches over the same input, concatenated."""

    def __init__(self):
        super().__init__()
        self.one = nn.Conv2d(8, 4, 1)
        self.three = nn.Sequential(nn.Conv2d(8, 4, 1), nn.Conv2d(4, 6, 3, padding=1))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(8, 2, 1))

    def forward(self, x):
        return torch.cat([self.one(x), self.three(x), self.pool(x)], 1)


TOYS = {
    "residual": lambda: nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), Residual(), Residual()),
    "concat": lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), DenseConcat()),
    "branches": lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Branches(), nn.ReLU()),
    "depthwise": lambda: nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1), nn.Conv2d(32, 32, 3, 1, 1, groups=32), nn.Conv2d(32, 64, 1)
    ),
    "grouped": lambda: nn.Sequential(nn.Conv2d(3, 32, 3, groups=1), nn.Conv2d(32, 64, 3, groups=8)),
    "transposed": lambda: nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1), nn.ConvTranspose2d(16, 8, 4, 2, 1, groups=2)
    ),
    "linear_on_sequences": lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.Flatten(2), nn.Linear(30 * 30, 10), nn.Linear(10, 5)
    ),
}


@pytest.mark.parametrize("toy", list(TOYS))
def test_macs_and_params_match_torch_flop_counter(toy):
    model = TOYS[toy]()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, 3, 32, 32))
    result = summary(model, (3, 32, 32), batch_size=2)
    assert result.flops == counter.get_total_flops()  # torch counts 2 FLOPs per MAC, no bias
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert sum(row.params for row in result.rows) == result.total_params


def test_depthwise_conv_costs_one_filter_per_channel():
    result = summary(TOYS["depthwise"](), (3, 32, 32))
    depthwise = result.rows[2]
    assert depthwise.params == 32 * 3 * 3 + 32
    assert depthwise.macs == 32 * 16 * 16 * 3 * 3


def test_receptive_field_runs_along_chains_and_stops_where_branches_merge():
    result = summary(TOYS["residual"](), (3, 32, 32))
    by_name = {row.name: row for row in result.rows}
    assert by_name["0"].receptive_field == (3, 3) and by_name["0"].jump == (2, 2)
    assert by_name["1.conv1"].receptive_field == (7, 7)  # 3 + (3 - 1)·2
    assert by_name["1.conv2"].receptive_field == (11, 11)
    after_add = by_name["1.relu:2"]  # the block's ReLU, called a second time after the add
    assert after_add.receptive_field is None  # the residual add merged two paths
    concat = summary(TOYS["concat"](), (3, 32, 32))
    assert [r.receptive_field for r in concat.rows if r.name == "1.b"] == [None]


def test_depth_aggregates_deeper_layers_into_their_parent():
    model = _torchvision_on_meta("resnet18")
    full = summary(model, (3, 224, 224))
    top = summary(model, (3, 224, 224), depth=1)
    names = [row.name for row in top.rows]
    assert names == ["input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                     "layer4", "avgpool", "fc"]  # fmt: skip
    layer1 = top.rows[names.index("layer1")]
    assert layer1.output_shape == (64, 56, 56)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        model.layer1(torch.empty(1, 64, 56, 56))
    assert 2 * layer1.macs == counter.get_total_flops()
    assert layer1.params == sum(p.numel() for p in model.layer1.parameters())
    assert sum(r.macs for r in top.rows) == full.macs == top.macs
    assert sum(r.params for r in top.rows) == full.total_params


def test_summary_note_is_shown_on_the_module_row():
    result = summary(TOYS["concat"](), (3, 32, 32))
    noted = [row for row in result.rows if row.note]
    assert [(row.name, row.type) for row in noted] == [("1", "DenseConcat")]
    assert noted[0].params == 0  # a header row: its layers have their own rows
    aggregated = summary(TOYS["concat"](), (3, 32, 32), depth=1)
    assert aggregated.rows[2].note == "k0 + k(l-1) input maps"
    assert aggregated.rows[2].output_shape == (16, 16, 16)


def test_users_model_is_not_moved_changed_or_left_hooked():
    model = TOYS["residual"]()
    model[1].eval()  # a mix of train and eval modules, which summary must give back as it was
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    summary(model, (3, 32, 32))
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_sizing_allocates_nothing():
    # 100,000 × 150,528 + 100,000² weights would be 100 GB in float32: it only works on meta.
    result = summary("fc100000-fc100000", input_size=(3, 224, 224))
    assert result.total_params == 150_528 * 100_000 + 100_000 + 100_000 * 100_000 + 100_000
    assert result.param_bytes > 10**11


def test_stride_that_does_not_tile_warns_with_layer_and_pixels():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=3))
    with pytest.warns(GeometryWarning, match=r"layer '0'.*drops the last 1 pixel.*2\.33"):
        result = summary(model, (1, 7, 7))
    assert len(result.warnings) == 1 and "2.33" in result.warnings[0]
    assert "warning: layer '0'" in str(result)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("resnet50", {}), ("googlenet", NO_AUX)],
)
def test_no_warning_where_no_pixel_is_dropped(name, kwargs):
    # ResNet's 1×1 stride-2 shortcuts skip every other pixel by design; GoogLeNet's ceil-mode
    # pools read a last, partial window: neither drops pixels.
    model = _torchvision_on_meta(name, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeometryWarning)
        assert summary(model, (3, 224, 224)).warnings == []


@pytest.mark.parametrize(
    "pool",
    [nn.FractionalMaxPool2d(3, output_size=5), nn.AdaptiveAvgPool2d(5), nn.AdaptiveMaxPool2d(5)],
    ids=["fractional", "adaptive-avg", "adaptive-max"],
)
def test_pools_without_a_fixed_stride_get_no_window(pool):
    # Fractional max pooling (Graham 2014) draws its windows' positions at random, with a mean
    # stride of input/output = 14/5 here; adaptive pools fit theirs to the output size. Neither
    # has a stride to report or a last window to warn about, so the row says no kernel, no
    # receptive field, and no pixel is dropped.
    model = nn.Sequential(nn.Conv2d(3, 8, 3), pool)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeometryWarning)
        result = summary(model, (3, 16, 16))
    row = next(r for r in result.rows if r.name == "1")
    assert row.output_shape == tuple(model(torch.zeros(1, 3, 16, 16)).shape[1:]) == (8, 5, 5)
    assert (row.kernel, row.stride, row.receptive_field) == (None, None, None)
    assert result.warnings == []


class _PoolUnpool(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

    def forward(self, x):
        return self.unpool(*self.pool(x))


def test_max_unpooling_is_an_upsampling_not_a_pool():
    # 14 -> 7 -> 14: max-unpooling puts each of the 7×7 values back at its 2×2 window's argmax,
    # so it reads every input pixel (as a pool read as (7 - 2)/2 + 1 = 3.5 would drop one) and
    # an output pixel sees one input pixel or none: no pool-like receptive field either
    model = nn.Sequential(nn.Conv2d(3, 8, 3), _PoolUnpool())
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeometryWarning)
        result = summary(model, (3, 16, 16))
    rows = {r.name: r for r in result.rows}
    assert rows["1.pool"].output_shape == (8, 7, 7) and rows["1.pool"].receptive_field == (4, 4)
    assert rows["1.unpool"].output_shape == (8, 14, 14)
    assert rows["1.unpool"].receptive_field is None
    assert result.warnings == []


class _Attention(nn.Module):
    """Self-attention over the positions of a feature map: one nn.MultiheadAttention."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)
        return self.attention(tokens, tokens, tokens, need_weights=False)[0]


def test_attention_macs_are_its_projections_and_its_two_matrix_products():
    # Vaswani et al. 2017 for L tokens of width E: the q, k, v projections 3·L·E², the output
    # projection L·E², and Q·Kᵀ and softmax·V, L²·E each (summed over the heads)
    width, tokens = 16, 8 * 8
    result = summary(_Attention(width, heads=2), (width, 8, 8))
    assert result.macs == 4 * tokens * width**2 + 2 * tokens**2 * width == 196_608
    row = next(r for r in result.rows if r.name == "attention")
    assert row.macs == result.macs and row.params == 4 * width**2 + 4 * width
    assert result.unshown_params == 0


class _OwnProduct(nn.Module):
    """A conv, then a matrix product in the module's own forward on a parameter it holds."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.mix = nn.Parameter(torch.zeros(8, 5))

    def forward(self, x):
        return self.conv(x).mean((2, 3)) @ self.mix


@pytest.mark.parametrize("batch", [1, 3])
def test_a_forward_own_matrix_product_is_counted_in_its_own_row(batch):
    result = summary(_OwnProduct(), (3, 10, 10), batch_size=batch)
    conv = batch * 8 * 8 * 8 * 3 * 9  # output elements × in channels × kernel area
    rows = {r.name: r for r in result.rows}
    assert rows["conv"].macs == conv
    assert rows["_OwnProduct"].macs == batch * 8 * 5 and rows["_OwnProduct"].params == 40
    assert result.macs == conv + batch * 8 * 5 == sum(r.macs for r in result.rows)
    assert result.unshown_params == 0


class _KeywordCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(input=self.conv(input=x).mean((2, 3)))


def test_layers_called_with_keyword_inputs_are_sized_like_any_other():
    result = summary(_KeywordCalls(), (3, 10, 10))
    rows = {r.name: r for r in result.rows}
    assert rows["conv"].macs == 8 * 8 * 8 * 3 * 9 and rows["conv"].kernel == (3, 3)
    assert rows["conv"].receptive_field == (3, 3)
    assert rows["fc"].macs == 8 * 4
    with pytest.raises(GeometryError, match="layer 'conv'"):
        summary(_KeywordCalls(), (3, 2, 2))


def test_fold_has_no_window_over_its_block_axis():
    # nn.Fold's input is (N, C·k·k, L): L counts blocks, it is not a spatial axis to slide over
    model = nn.Sequential(nn.Fold(output_size=(6, 6), kernel_size=2, stride=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeometryWarning)
        result = summary(model, (8, 9))
    row = next(r for r in result.rows if r.name == "0")
    assert row.output_shape == (2, 6, 6) and row.kernel is None
    assert summary(nn.Sequential(nn.Fold((3, 3), kernel_size=3)), (18, 1)).rows[1].output_shape == (
        2,
        3,
        3,
    )


def test_squeezenet_first_conv_really_drops_a_pixel():
    # 224 with a 7×7 filter at stride 2: (224 - 7)/2 + 1 = 109.5, the last column is never read.
    with pytest.warns(GeometryWarning, match=r"features\.0.*109\.50"):
        summary(_torchvision_on_meta("squeezenet1_0"), (3, 224, 224))


def test_totals_memory_and_json():
    result = summary(TOYS["residual"](), (3, 32, 32), batch_size=4)
    params = sum(p.numel() for p in TOYS["residual"]().parameters())
    assert result.param_bytes == 4 * params
    assert result.training_bytes == 3 * 4 * params + result.activation_bytes
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total_params"] == params and data["flops"] == 2 * data["macs"]
    assert data["rows"][0]["name"] == "input" and data["rows"][0]["activations"] == 4 * 3 * 32 * 32
    assert result.rows[1].output_shape == (8, 16, 16)


def test_frozen_parameters_are_non_trainable():
    model = TOYS["depthwise"]()
    model[0].requires_grad_(False)
    result = summary(model, (3, 32, 32))
    assert result.non_trainable_params == 3 * 32 * 9 + 32
    assert result.trainable_params + result.non_trainable_params == result.total_params


def test_printed_table_states_the_convention():
    text = " ".join(str(summary(_torchvision_on_meta("vgg16"), (3, 224, 224))).split())
    assert "FLOPs (2 × MACs)" in text and "138,357,544" in text
    assert "bias not counted" in text and "VGG-16 table" in text


def test_bad_arguments_are_clear_errors():
    with pytest.raises(UnknownNameError, match="vgg16"):
        summary("vgg61")
    with pytest.raises(ConfigError, match="input_size"):
        summary(nn.Conv2d(1, 1, 3))
    with pytest.raises(ConfigError, match=r"vgg16 takes an input like 3×224×224"):
        summary("vgg16", (3, 224))
    with pytest.raises(ConfigError, match="batch_size"):
        summary(nn.Conv2d(1, 1, 3), (1, 8, 8), batch_size=0)
    fixed_input = nn.Sequential(nn.Flatten(), nn.Linear(1024, 10))
    fixed_input.default_input_size = (1, 32, 32)
    with pytest.raises(GeometryError, match=r"cannot run on input 3×224×224.*'1'.*1×32×32"):
        summary(fixed_input, (3, 224, 224))


def test_a_model_torch_would_refuse_is_refused():
    # Sizing runs shape-only stand-ins for norm layers; they must still refuse what torch does.
    wrong = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(16))
    with pytest.raises(RuntimeError):
        wrong(torch.zeros(1, 3, 8, 8))
    with pytest.raises(GeometryError, match=r"layer '1' raised RuntimeError.*16 channels"):
        summary(wrong, (3, 8, 8))


def test_named_models_and_specs_by_string():
    lenet = summary("[conv6k5-pool2]x2-conv120k5-fc84-fc10", input_size=(1, 32, 32))
    assert lenet.rows[-1].output_shape == (10,)
    spec_error = pytest.raises(GeometryError, match=r"smallest input that works is 1×32×32")
    with spec_error:
        summary("[conv6k5-pool2]x2-conv120k5-fc84-fc10", input_size=(1, 20, 20))
