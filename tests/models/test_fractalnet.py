"""FractalNet: the expansion rule, joins, local/global drop-path and the deepest-column mode."""

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, model_entry
from cnnlab.models.fractalnet import FractalBlock, FractalNet, fractal_join

TINY = (4, 4, 4, 4, 4)  # the CIFAR layout (B = 5 blocks) at 4 channels, for exact comparisons


def conv_count(block: FractalBlock) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in block.modules())


@pytest.mark.parametrize("columns", [1, 2, 3, 4, 5])
def test_expansion_rule_conv_counts(columns):
    # f_1 = conv; f_{C+1} = join(f_C o f_C, conv): convs(C+1) = 2 convs(C) + 1 = 2^(C+1) - 1,
    # and the deepest path doubles: 2^(C-1).
    with torch.device("meta"):
        block = FractalBlock(columns, 3, 8)
    assert conv_count(block) == 2**columns - 1
    assert [len(column) for column in block.columns] == [2**c for c in range(columns)]
    assert len(block.columns[-1]) == 2 ** (columns - 1)


def test_two_column_block_is_join_of_conv_conv_and_conv():
    torch.manual_seed(0)
    block = FractalBlock(2, 3, 4).eval()
    z = torch.randn(2, 3, 6, 6)
    f1 = block.columns[0][0]
    deep = block.columns[1]
    with torch.no_grad():
        expected = (deep[1](deep[0](z)) + f1(z)) / 2
        assert torch.allclose(block(z), expected, atol=1e-6)


def test_three_column_block_joins_where_columns_meet():
    # f_3(z) = join(f_2(f_2(z)), conv(z)), nested joins at the same depth merged into one mean.
    torch.manual_seed(0)
    block = FractalBlock(3, 3, 4).eval()
    z = torch.randn(2, 3, 6, 6)
    c0, c1, c2 = block.columns
    with torch.no_grad():
        first = (c2[1](c2[0](z)) + c1[0](z)) / 2  # the inner f_2's join
        expected = (c2[3](c2[2](first)) + c1[1](first) + c0[0](z)) / 3
        assert torch.allclose(block(z), expected, atol=1e-6)


def test_join_is_the_mean_and_of_identical_columns_is_the_column():
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.allclose(fractal_join([a, b]), (a + b) / 2)
    assert torch.equal(fractal_join([a]), a)
    torch.manual_seed(0)
    for drop in (0.0, 0.15, 0.9):
        assert torch.allclose(fractal_join([a, a, a], drop), a)


def test_local_drop_path_statistics():
    # Two inputs, 0 and 1 per sample, each dropped with p = 0.15, at least one kept:
    # both kept -> 0.5 with probability 0.85^2; otherwise exactly one input survives.
    torch.manual_seed(0)
    n = 40_000
    zeros, ones = torch.zeros(n, 1), torch.ones(n, 1)
    out = fractal_join([zeros, ones], 0.15).flatten()
    assert set(out.unique().tolist()) <= {0.0, 0.5, 1.0}
    both = 0.85**2
    assert (out == 0.5).float().mean().item() == pytest.approx(both, abs=0.01)
    assert (out == 1.0).float().mean().item() == pytest.approx((1 - both) / 2, abs=0.01)


def _column_output(model: FractalNet, x: torch.Tensor, column: int) -> torch.Tensor:
    """The network computed by hand through ``column`` only."""
    for block in model.blocks:
        for conv in block.columns[column]:
            x = conv(x)
        x = model.pool(x)
    return model.fc(torch.flatten(model.avgpool(x), 1))


def test_global_drop_path_runs_a_single_column():
    torch.manual_seed(0)
    model = FractalNet(num_columns=3, channels=TINY, drop_path=True, global_drop=1.0).train()
    x = torch.randn(4, 3, 32, 32)
    seen = set()
    with torch.no_grad():
        for _ in range(12):
            out = model(x)
            matches = [
                c for c in range(3) if torch.allclose(out, _column_output(model, x, c), atol=1e-5)
            ]
            assert len(matches) == 1
            seen.add(matches[0])
    assert seen == {0, 1, 2}  # the column is drawn uniformly per mini-batch


def test_local_drop_path_is_random_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = FractalNet(num_columns=3, channels=TINY, drop_path=True, global_drop=0.0)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))


def test_deepest_column_mode_equals_the_deepest_column():
    torch.manual_seed(0)
    model = FractalNet(num_columns=3, channels=TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = model(x)
        model.deepest_column_only = True
        deepest = model(x)
    assert torch.allclose(deepest, _column_output(model, x, 2), atol=1e-6)
    assert not torch.allclose(deepest, full)


@pytest.mark.parametrize(
    ("name", "columns", "depth"), [("fractalnet20", 3, 20), ("fractalnet40", 4, 40)]
)
def test_cifar_configuration(name, columns, depth):
    with torch.device("meta"):
        model = create_model(name)
    assert model.default_input_size == (3, 32, 32)
    assert len(model.blocks) == 5 and model.num_columns == columns
    assert sum(len(block.columns[-1]) for block in model.blocks) == depth
    # Closed form: per block C convs read the block's input, the other 2^C - 1 - C its width,
    # 3x3 kernels without bias, BN (scale, shift) after each; then a 512 -> 10 classifier.
    widths = (64, 128, 256, 512, 512)
    expected = 512 * 10 + 10
    for cin, cout in zip((3, *widths[:-1]), widths, strict=True):
        convs = 2**columns - 1
        expected += (
            columns * 9 * cin * cout + (convs - columns) * 9 * cout * cout + convs * 2 * cout
        )
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model_entry(name).paper == "Larsson et al. 2017"


def test_forward_and_backward_with_drop_path_and_paper_dropout():
    torch.manual_seed(0)
    model = create_model("fractalnet20", num_classes=7, drop_path=True, dropout=True)
    rates = sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout)})
    assert rates == [0.1, 0.2, 0.3, 0.4]  # the paper's per-block rates; block 1 has none
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert model.blocks[0].columns[2][0][0].weight.grad is not None


def test_builds_and_runs_on_meta_with_other_classes_and_channels():
    with torch.device("meta"):
        model = create_model("fractalnet40", num_classes=100, in_chans=1)
        assert model(torch.empty(2, 1, 32, 32)).shape == (2, 100)
    assert model.default_input_size == (1, 32, 32)


@pytest.mark.parametrize(
    "kwargs", [{"dropout": (0.1, 0.2)}, {"dropout": (0.0, 0.1, 0.2, 0.3, 1.0)}, {"local_drop": 2}]
)
def test_bad_options_are_explained(kwargs):
    with pytest.raises(CnnlabError):
        create_model("fractalnet20", **kwargs)
