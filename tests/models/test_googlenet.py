"""GoogLeNet: the lecture's Inception module, the 2014 paper's Table 1, torchvision's variant."""

import pytest
import torch
import torchvision
from model_checks import on_meta, output_shapes, randomize_batch_norm, with_weights_of
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.errors import ConfigError, GeometryError
from cnnlab.models import create_model
from cnnlab.models.googlenet import googlenet, googlenet_paper
from cnnlab.nn.inception import InceptionModule

# The lecture's Inception example (shared/seeds/000_c735ab600514511f.txt, GoogLeNet slides
# "How many operations are there in this layer?"): a 28x28x256 input, 128 1x1, 192 3x3 and 96 5x5
# filters; the reduced form adds 64-map 1x1 convolutions before the 3x3 and 5x5 and after the
# pool. Operations = multiply-adds, H*W*Cin*k*k*Cout per convolution, as the lecture writes them.
LECTURE_NAIVE_OPS = {
    "1x1x128": 25_690_112,
    "3x3x192": 346_816_512,  # printed 356,816,512, a slip: its own 28*28*256*3*3*192 is this
    "5x5x96": 481_689_600,
}
LECTURE_NAIVE_TOTAL = 854_196_224  # the slide's SUM 864,196,224 carries the 3x3 line's slip
LECTURE_REDUCED_OPS = {
    "1x1x128": 25_690_112,
    "1x1x64 before 3x3": 12_845_056,
    "1x1x64 before 5x5": 12_845_056,
    "1x1x64 after pool": 12_845_056,
    "3x3x192": 86_704_128,
    "5x5x96": 120_422_400,
}
LECTURE_REDUCED_TOTAL = 271_351_808  # printed "SUM: 271,351,808"

# Szegedy et al. 2014, "Going deeper with convolutions", Table 1: params (K = 1024 weights, no
# biases) and ops (M multiply-adds) per layer. The stem's 1x1 (64) and 3x3 (192) convs share one
# row. Rows that contradict the table's own widths are marked: conv1's 2.7K / 34M fit no
# 7x7x3x64 conv on 112x112 (9.2K / 118M); inception 4c's 463K disagrees with its own 100M
# ops (100M / 196 positions = 497K); 5a's 1072K / 54M fit neither its widths nor 4e's twin row.
PAPER_TABLE1 = [
    # (our modules, params K, ops M, params fit the widths, ops fit the widths)
    (("conv1",), 2.7, 34, False, False),
    (("conv2", "conv3"), 112, 360, True, True),
    (("inception3a",), 159, 128, True, True),
    (("inception3b",), 380, 304, True, True),
    (("inception4a",), 364, 73, True, True),
    (("inception4b",), 437, 88, True, True),
    (("inception4c",), 463, 100, False, True),
    (("inception4d",), 580, 119, True, True),
    (("inception4e",), 840, 170, True, True),
    (("inception5a",), 1072, 54, False, False),
    (("inception5b",), 1388, 71, True, True),
    (("fc",), 1000, 1, True, True),
]
PAPER_PARAMS_SUM_K = 6797.7  # 2.7 + 112 + 159 + ... + 1000, about 6.8M

# Table 1's "output size" column at 224x224 (channels, height, width).
PAPER_OUTPUT_SIZES = {
    "conv1": (64, 112, 112),
    "maxpool1": (64, 56, 56),
    "conv3": (192, 56, 56),
    "maxpool2": (192, 28, 28),
    "inception3a": (256, 28, 28),
    "inception3b": (480, 28, 28),
    "maxpool3": (480, 14, 14),
    "inception4a": (512, 14, 14),
    "inception4b": (512, 14, 14),
    "inception4c": (512, 14, 14),
    "inception4d": (528, 14, 14),
    "inception4e": (832, 14, 14),
    "maxpool4": (832, 7, 7),
    "inception5a": (832, 7, 7),
    "inception5b": (1024, 7, 7),
    "avgpool": (1024, 1, 1),
    "fc": (1000,),
}

# torchvision 0.2x: GoogLeNet_Weights.IMAGENET1K_V1.meta (num_params without the auxiliary
# classifiers, "_ops" = GMACs at 224x224); with them, torchvision.models.googlenet(weights=None).
TORCHVISION_GOOGLENET = {"params": 6_624_904, "params_aux": 13_004_888, "gmacs": 1.498}


def lecture_module(reduced: bool) -> InceptionModule:
    widths = {"ch3x3_reduce": 64, "ch5x5_reduce": 64, "pool_proj": 64} if reduced else {}
    return InceptionModule(256, 128, 192, 96, **widths)


def conv_macs_by_hand(module: nn.Module, height: int, width: int) -> int:
    """Sum of H*W*Cout*Cin*kh*kw over the convolutions of a grid-preserving module."""
    return sum(
        height
        * width
        * conv.out_channels
        * conv.in_channels
        * conv.kernel_size[0]
        * conv.kernel_size[1]
        for conv in module.modules()
        if isinstance(conv, nn.Conv2d)
    )


def flop_counter_macs(model: nn.Module, input_size: tuple[int, ...]) -> dict[str, int]:
    """Multiply-adds per module of a meta-device model, from torch's FlopCounterMode (FLOPs / 2)."""
    with torch.device("meta"):
        x = torch.empty(1, *input_size)
    with FlopCounterMode(display=False) as counter:
        model.eval()(x)
    name = type(model).__name__
    return {
        key.removeprefix(name).lstrip(".") or "total": sum(counts.values()) // 2
        for key, counts in counter.get_flop_counts().items()
        if key != "Global"
    }


# --- the lecture's Inception module -------------------------------------------------------


def test_lecture_totals_add_up():
    assert 28 * 28 * 256 * 3 * 3 * 192 == LECTURE_NAIVE_OPS["3x3x192"] != 356_816_512
    assert sum(LECTURE_NAIVE_OPS.values()) == LECTURE_NAIVE_TOTAL
    assert sum(LECTURE_REDUCED_OPS.values()) == LECTURE_REDUCED_TOTAL


@pytest.mark.parametrize(
    ("reduced", "out_channels", "total"),
    [(False, 672, LECTURE_NAIVE_TOTAL), (True, 480, LECTURE_REDUCED_TOTAL)],
)
def test_inception_module_sizes_to_the_lecture(reduced, out_channels, total):
    module = on_meta(lecture_module, reduced=reduced)
    with torch.device("meta"):
        out = module(torch.empty(1, 256, 28, 28))
    assert out.shape == (1, out_channels, 28, 28)
    assert module.out_channels == out_channels
    assert conv_macs_by_hand(module, 28, 28) == total
    assert flop_counter_macs(module, (256, 28, 28))["total"] == total


def test_inception_module_branch_costs_match_the_lecture_lines():
    naive = flop_counter_macs(on_meta(lecture_module, reduced=False), (256, 28, 28))
    branches = [naive.get(f"branch{i}", 0) for i in (1, 2, 3, 4)]
    assert branches == [*LECTURE_NAIVE_OPS.values(), 0]  # the pool branch has no multiply-adds
    reduced = flop_counter_macs(on_meta(lecture_module, reduced=True), (256, 28, 28))
    ops = LECTURE_REDUCED_OPS
    assert reduced["branch1"] == ops["1x1x128"]
    assert reduced["branch2"] == ops["1x1x64 before 3x3"] + ops["3x3x192"]
    assert reduced["branch3"] == ops["1x1x64 before 5x5"] + ops["5x5x96"]
    assert reduced["branch4"] == ops["1x1x64 after pool"]


@pytest.mark.parametrize(
    ("reduced", "total"), [(False, LECTURE_NAIVE_TOTAL), (True, LECTURE_REDUCED_TOTAL)]
)
def test_summary_sizes_the_lecture_module(reduced, total):
    from cnnlab.sizing import summary

    assert summary(lecture_module(reduced), input_size=(256, 28, 28)).macs == total


def test_naive_module_output_is_wider_than_its_input_and_notes_say_why():
    naive, reduced = lecture_module(False), lecture_module(True)
    assert naive.summary_note() == "naive: concat 128+192+96+256 = 672 maps"
    assert reduced.summary_note() == "reduced: concat 128+192+96+64 = 480 maps"
    x = torch.randn(1, 256, 6, 6)
    with torch.no_grad():
        assert torch.equal(naive(x)[:, 416:], nn.functional.max_pool2d(x, 3, 1, 1))


def test_partial_reductions_are_rejected():
    with pytest.raises(ConfigError, match="all of ch3x3_reduce, ch5x5_reduce and pool_proj"):
        InceptionModule(256, 128, 192, 96, ch3x3_reduce=64)


# --- googlenet_paper: Szegedy et al. 2014 as published ----------------------------------


def test_paper_output_sizes_follow_table1():
    model = on_meta(googlenet_paper, aux_logits=False)
    paths = {name: name for name in PAPER_OUTPUT_SIZES}
    assert output_shapes(model, paths, (3, 224, 224)) == PAPER_OUTPUT_SIZES


def test_paper_params_and_ops_follow_table1():
    model = on_meta(googlenet_paper, aux_logits=False)
    macs = flop_counter_macs(model, (3, 224, 224))
    weights_k = {}
    for modules, params_k, ops_m, params_fit, ops_fit in PAPER_TABLE1:
        weights = sum(
            p.numel()
            for name in modules
            for key, p in getattr(model, name).named_parameters()
            if key.endswith("weight")
        )
        weights_k[modules] = weights / 1024
        ops = sum(macs[name] for name in modules) / 1e6
        if ops_fit:
            assert abs(ops - ops_m) < 1, (modules, ops, ops_m)
        if params_fit:
            assert weights_k[modules] == pytest.approx(params_k, rel=0.02), modules
    assert sum(row[1] for row in PAPER_TABLE1) == pytest.approx(PAPER_PARAMS_SUM_K)
    total_k = sum(weights_k.values())
    assert total_k == pytest.approx(PAPER_PARAMS_SUM_K, rel=0.005)
    assert round(total_k / 1000, 1) == round(PAPER_PARAMS_SUM_K / 1000, 1) == 6.8


def test_paper_layers_are_the_published_ones():
    model = on_meta(googlenet_paper)
    kinds = [type(m) for m in model.modules()]
    assert nn.BatchNorm2d not in kinds
    assert kinds.count(nn.LocalResponseNorm) == 2
    assert model.inception3a.branch3[1][0].kernel_size == (5, 5)
    assert model.dropout.p == 0.4
    assert model.aux1.dropout.p == model.aux2.dropout.p == 0.7
    assert isinstance(model.aux1.pool, nn.AvgPool2d)
    assert (model.aux1.pool.kernel_size, model.aux1.pool.stride) == (5, 3)
    assert model.aux_loss_weight == 0.3
    assert model.default_input_size == (3, 224, 224)


def test_paper_trains_with_two_auxiliary_heads_and_drops_them_in_eval():
    # 224x224 is the smallest input whose 4a/4d maps pool to the auxiliary heads' 4x4.
    torch.manual_seed(0)
    model = googlenet_paper(num_classes=10)
    x = torch.randn(1, 3, 224, 224)
    logits, aux1, aux2 = model(x)
    assert logits.shape == aux1.shape == aux2.shape == (1, 10)
    targets = torch.tensor([3])
    loss = nn.functional.cross_entropy(logits, targets) + model.aux_loss_weight * (
        nn.functional.cross_entropy(aux1, targets) + nn.functional.cross_entropy(aux2, targets)
    )
    loss.backward()
    assert model.conv1[0].weight.grad.abs().sum() > 0
    assert model.aux1.fc2.weight.grad.abs().sum() > 0
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 10)


def test_paper_aux_heads_reject_inputs_other_than_224():
    model = on_meta(googlenet_paper).train()
    with torch.device("meta"), pytest.raises(GeometryError, match="aux_logits=False"):
        model(torch.empty(1, 3, 160, 160))
    without_aux = on_meta(googlenet_paper, aux_logits=False).train()
    with torch.device("meta"):
        assert without_aux(torch.empty(2, 3, 160, 160)).shape == (2, 1000)


# --- googlenet: torchvision's batch-norm variant -----------------------------------------


@pytest.mark.parametrize("aux_logits", [True, False])
def test_googlenet_has_torchvision_keys_shapes_and_parameter_count(aux_logits):
    reference = on_meta(
        torchvision.models.googlenet, weights=None, aux_logits=aux_logits, init_weights=True
    )
    model = on_meta(googlenet, aux_logits=aux_logits)
    model.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    assert count == TORCHVISION_GOOGLENET["params_aux" if aux_logits else "params"]


@pytest.mark.parametrize(
    ("aux_logits", "transform_input"), [(True, False), (False, False), (True, True)]
)
def test_googlenet_matches_torchvision_outputs(aux_logits, transform_input):
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(
        weights=None,
        num_classes=10,
        aux_logits=aux_logits,
        transform_input=transform_input,
        init_weights=False,  # PyTorch's default init: outputs of order 1, quicker to build
    )
    randomize_batch_norm(reference)
    model = with_weights_of(
        reference, googlenet, num_classes=10, aux_logits=aux_logits, transform_input=transform_input
    )
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model.eval()(x), reference.eval()(x)
    assert theirs.abs().max() > 1e-2
    assert (ours - theirs).abs().max() < 1e-5


def test_googlenet_trains_like_torchvision_at_its_smallest_input():
    # 15x15 is torchvision's GoogLeNet_Weights min_size; in training mode both aux heads run.
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(weights=None, num_classes=10, init_weights=False)
    model = with_weights_of(reference, googlenet, num_classes=10)
    x = torch.randn(2, 3, 15, 15)
    torch.manual_seed(3)
    logits, aux1, aux2 = model.train()(x)
    torch.manual_seed(3)
    theirs = reference.train()(x)  # torchvision orders them (logits, aux2, aux1)
    for ours, ref in (
        (logits, theirs.logits),
        (aux1, theirs.aux_logits1),
        (aux2, theirs.aux_logits2),
    ):
        assert (ours - ref).abs().max() < 1e-5
    (logits.sum() + model.aux_loss_weight * (aux1.sum() + aux2.sum())).backward()
    assert model.conv1.conv.weight.grad.abs().sum() > 0
    assert model.aux2.fc2.weight.grad.abs().sum() > 0


def test_googlenet_defaults_match_torchvision():
    model = on_meta(googlenet)
    reference = on_meta(torchvision.models.googlenet, weights=None, init_weights=True)
    assert (model.aux_logits, model.transform_input) == (reference.aux_logits, False)
    assert model.dropout.p == reference.dropout.p == 0.2
    assert model.aux_loss_weight == 0.3
    assert model.default_input_size == (3, 224, 224)


def test_googlenet_macs_match_torchvision():
    macs = flop_counter_macs(on_meta(googlenet, aux_logits=False), (3, 224, 224))["total"]
    assert round(macs / 1e9, 3) == TORCHVISION_GOOGLENET["gmacs"]


@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_builders_take_classes_and_channels_and_build_on_meta(name):
    model = on_meta(create_model, name=name, num_classes=7, in_chans=1, aux_logits=False)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.default_input_size == (1, 224, 224)
    with torch.device("meta"):
        assert model.eval()(torch.empty(2, 1, 32, 32)).shape == (2, 7)


def test_transform_input_needs_rgb():
    model = on_meta(googlenet, in_chans=1, transform_input=True).eval()
    with torch.device("meta"), pytest.raises(ConfigError, match="transform_input=False"):
        model(torch.empty(1, 1, 32, 32))
