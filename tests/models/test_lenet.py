"""LeNet-5 against LeCun et al. 1998 (Section II-B, Fig. 2, Table I, Appendix A, eqs. 8-9)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.errors import CnnlabError, ConfigError, GeometryError
from cnnlab.models.lenet import ConnectionTableConv2d, LeNet5, digit_codes
from cnnlab.nn.rbf import EuclideanRBF, rbf_mse_loss
from cnnlab.nn.subsampling import ScaledTanh, TrainableSubsampling

# Trainable parameters per layer, as printed in LeCun et al. 1998, Section II-B.
PAPER_PARAMETERS = {
    "c1": 156,
    "s2": 12,
    "c3": 1_516,
    "s4": 32,
    "c5": 48_120,
    "f6": 10_164,
}
PAPER_TOTAL = 60_000  # "about 60,000" in the paper; the sum of the layer counts above

# Output map sizes, Section II-B: C1 28x28, S2 14x14, C3 10x10, S4 5x5, C5 1x1 (120 maps).
PAPER_MAP_SIZES = {"c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5)}
PAPER_MAP_SIZES["c5"] = (120, 1, 1)

# Table I as printed: rows are S2 maps 0-5, columns C3 maps 0-15, "X" = connected.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
""".split()


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return cnnlab.create_model("lenet5")


def layer(model, name):
    return getattr(model.features, name, None) or getattr(model.classifier, name)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", PAPER_PARAMETERS)
def test_layer_parameters_match_paper(paper_model, name):
    assert count(layer(paper_model, name)) == PAPER_PARAMETERS[name]


def test_total_is_60000_and_codes_are_fixed(paper_model):
    assert sum(PAPER_PARAMETERS.values()) == PAPER_TOTAL
    assert count(paper_model) == PAPER_TOTAL
    rbf = paper_model.classifier.output
    assert isinstance(rbf, EuclideanRBF)
    assert not any(p.requires_grad for p in rbf.parameters())
    assert "classifier.output.centers" in paper_model.state_dict()


def test_attributes(paper_model):
    assert paper_model.default_input_size == (1, 32, 32)
    assert paper_model.default_loss == "lenet_rbf"
    assert cnnlab.create_model("lenet5", in_chans=3).default_input_size == (3, 32, 32)


def test_map_sizes_match_paper(paper_model):
    x = torch.randn(1, 1, 32, 32)
    sizes = {}
    for name, module in paper_model.features.named_children():
        x = module(x)
        sizes[name] = tuple(x.shape[1:])
    assert {name: sizes[name] for name in PAPER_MAP_SIZES} == PAPER_MAP_SIZES
    assert paper_model(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_c3_follows_table_i_by_gradient(paper_model):
    """C3 map o depends on S2 map i exactly where Table I has an X."""
    c3 = paper_model.features.c3
    assert isinstance(c3, ConnectionTableConv2d)
    expected = torch.tensor([[ch == "X" for ch in row] for row in PAPER_TABLE_I])  # (6, 16)
    s2 = torch.randn(1, 6, 14, 14, requires_grad=True)
    out = c3(s2)
    for o in range(16):
        (grad,) = torch.autograd.grad(out[0, o].sum(), s2, retain_graph=True)
        depends = grad.abs().sum(dim=(0, 2, 3)) > 0
        assert depends.tolist() == expected[:, o].tolist(), f"C3 map {o}"
    assert int(expected.sum()) * 25 + 16 == PAPER_PARAMETERS["c3"]


def test_c3_equals_per_map_convolutions():
    torch.manual_seed(1)
    table = [(0, 2), (1,), (0, 1, 2)]
    conv = ConnectionTableConv2d(3, table, 3)
    x = torch.randn(2, 3, 8, 8)
    start, expected = 0, []
    for o, inputs in enumerate(table):
        kernels = conv.weight[start : start + len(inputs)].unsqueeze(0)
        expected.append(F.conv2d(x[:, list(inputs)], kernels, conv.bias[o : o + 1]))
        start += len(inputs)
    torch.testing.assert_close(conv(x), torch.cat(expected, dim=1))


def test_scaled_tanh_constants():
    f = ScaledTanh()
    values = f(torch.tensor([-1.0, 0.0, 1.0, 50.0], dtype=torch.float64))
    # Appendix A: A = 1.7159 and S = 2/3 are chosen so that f(1) = 1 and f(-1) = -1.
    assert values[1] == 0
    assert values[2] == pytest.approx(1.0, abs=1e-4)
    assert values[0] == pytest.approx(-1.0, abs=1e-4)
    assert values[3] == pytest.approx(1.7159)
    assert values[2] == pytest.approx(1.7159 * math.tanh(2 / 3))


def test_trainable_subsampling_is_coefficient_times_block_sum_plus_bias():
    torch.manual_seed(2)
    layer_ = TrainableSubsampling(3)
    x = torch.randn(2, 3, 6, 6)
    block_sums = x.view(2, 3, 3, 2, 3, 2).sum(dim=(3, 5))
    expected = block_sums * layer_.weight.view(1, 3, 1, 1) + layer_.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(layer_(x), expected)
    assert count(layer_) == 6


def test_rbf_logits_are_negative_squared_distances():
    codes = digit_codes()
    rbf = EuclideanRBF(codes)
    torch.manual_seed(3)
    f6 = torch.randn(5, 84)
    torch.testing.assert_close(rbf(f6), -torch.cdist(f6, codes).pow(2), rtol=1e-5, atol=1e-4)
    # A code fed in is at distance 0 from itself: it is the prediction.
    logits = rbf(codes)
    assert logits.argmax(dim=1).tolist() == list(range(10))
    assert torch.all(logits.diagonal() == 0)


def test_digit_codes_are_distinct_pm1_bitmaps():
    codes = digit_codes()
    assert codes.shape == (10, 7 * 12)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    ink = (codes > 0).float().mean(dim=1)
    assert torch.all((ink > 0.15) & (ink < 0.6))  # drawn strokes, not blank or filled
    hamming = (codes[:, None] != codes[None]).sum(dim=-1) + 100 * torch.eye(10, dtype=torch.long)
    assert hamming.min() >= 4


def test_rbf_mse_loss_is_eq_8_and_eq_9():
    torch.manual_seed(4)
    codes = digit_codes()
    f6 = torch.randn(4, 84, dtype=torch.float64)
    target = torch.tensor([3, 0, 9, 3])
    distances = ((f6[:, None, :] - codes.double()) ** 2).sum(dim=-1)  # y_i of the paper
    logits = -distances
    eq8 = sum(distances[p, target[p]].item() for p in range(4)) / 4
    assert rbf_mse_loss(logits, target).item() == pytest.approx(eq8)
    j = 1.5
    eq9 = (
        sum(
            distances[p, target[p]].item()
            + math.log(math.exp(-j) + sum(math.exp(-y) for y in distances[p].tolist()))
            for p in range(4)
        )
        / 4
    )
    assert rbf_mse_loss(logits, target, discriminative_j=j).item() == pytest.approx(eq9)


def test_paper_model_learns_with_its_loss():
    torch.manual_seed(5)
    model = cnnlab.create_model("lenet5")
    images, labels = torch.randn(16, 1, 32, 32), torch.arange(16) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = rbf_mse_loss(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]  # from ~84 (F6 at 0: every code at distance 84)
    assert (model(images).argmax(dim=1) == labels).float().mean() >= 0.9


def test_other_class_counts_get_seeded_random_codes():
    a = cnnlab.create_model("lenet5", num_classes=26)
    b = cnnlab.create_model("lenet5", num_classes=26)
    c = cnnlab.create_model("lenet5", num_classes=26, code_seed=1)
    codes = a.classifier.output.centers
    assert codes.shape == (26, 84) and set(codes.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(codes, b.classifier.output.centers)
    assert not torch.equal(codes, c.classifier.output.centers)
    assert a(torch.randn(2, 1, 32, 32)).shape == (2, 26)


def test_modern_variant():
    model = cnnlab.create_model("lenet5_modern")
    # C1 156 + full C3 (6*25+1)*16 = 2,416 + C5 48,120 + F6 10,164 + linear output 85*10 = 850
    assert count(model) == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    kinds = {type(m) for m in model.modules()}
    assert {torch.nn.ReLU, torch.nn.MaxPool2d, torch.nn.Linear} <= kinds
    assert not kinds & {ConnectionTableConv2d, TrainableSubsampling, ScaledTanh, EuclideanRBF}
    assert model.default_loss == "cross_entropy"
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_wrong_input_size_is_a_clear_error(paper_model):
    with pytest.raises(GeometryError, match="32x32"):
        paper_model(torch.randn(1, 1, 28, 28))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ConnectionTableConv2d(6, [(0, 6)], 5),
        lambda: ConnectionTableConv2d(6, [(1, 1)], 5),
        lambda: LeNet5(rbf_codes=torch.ones(10, 80)),
        lambda: EuclideanRBF(torch.ones(84)),
        lambda: rbf_mse_loss(torch.zeros(1, 10), torch.tensor([0]), discriminative_j=0),
    ],
    ids=["map-out-of-range", "repeated-map", "code-shape", "centres-not-matrix", "j-not-positive"],
)
def test_bad_configuration_is_a_cnnlab_error(build):
    with pytest.raises(ConfigError) as info:
        build()
    assert isinstance(info.value, CnnlabError) and "\n" not in str(info.value)
