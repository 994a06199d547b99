"""Xception (Chollet 2017) against the paper's Fig. 5 and Table 3."""

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import create_model, model_entry
from cnnlab.models.xception import Xception, XceptionBlock
from cnnlab.nn.separable import SeparableConv2d

# Chollet 2017, Table 3: Xception has 22,855,952 parameters (the osmr/imgclsmob model table
# lists the same count).
PAPER_PARAMS = 22_855_952

# Chollet 2017, Fig. 5: feature maps at 299×299 input (channels, side) after each stage.
FIG_5 = [
    ("entry_flow.conv1", 32, 149),
    ("entry_flow.conv2", 64, 147),
    ("entry_flow.block1", 128, 74),
    ("entry_flow.block2", 256, 37),
    ("entry_flow.block3", 728, 19),
    ("middle_flow", 728, 19),
    ("exit_flow.block", 1024, 10),
    ("exit_flow.sepconv1", 1536, 10),
    ("exit_flow.sepconv2", 2048, 10),
]


def _build_meta() -> nn.Module:
    with torch.device("meta"):
        return create_model("xception")


def test_params_match_table_3():
    model = _build_meta()
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMS
    assert model.default_input_size == (3, 299, 299)


def test_summary_counts_the_same_parameters():
    from cnnlab.sizing import summary

    assert summary("xception").total_params == PAPER_PARAMS


def test_feature_maps_follow_figure_5():
    model = _build_meta()
    shapes = {}
    modules = dict(model.named_modules())
    for name, _, _ in FIG_5:
        modules[name].register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))
        )
    with torch.device("meta"):
        assert model(torch.empty(1, 3, 299, 299)).shape == (1, 1000)
    assert shapes == {name: (c, side, side) for name, c, side in FIG_5}


def test_flows_are_built_as_in_figure_5():
    model = _build_meta()
    assert len(model.middle_flow) == 8
    middle = model.middle_flow[0]
    assert isinstance(middle.shortcut, nn.Identity)
    assert [type(m) for m in middle.residual] == [nn.ReLU, SeparableConv2d] * 3
    # Strided blocks: a 1×1 stride-2 conv with batch norm on the shortcut, a 3×3/2 max pool last.
    for block in [*model.entry_flow[2:], model.exit_flow.block]:
        conv, norm = block.shortcut
        assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
        assert isinstance(norm, nn.BatchNorm2d)
        assert isinstance(block.residual[-1], nn.MaxPool2d)
    # The first block follows a conv that ends with ReLU, so it starts with the separable conv.
    assert isinstance(model.entry_flow.block1.residual[0], SeparableConv2d)
    assert isinstance(model.entry_flow.block2.residual[0], nn.ReLU)


def test_no_nonlinearity_between_depthwise_and_pointwise():
    separables = [m for m in _build_meta().modules() if isinstance(m, SeparableConv2d)]
    assert len(separables) == 2 + 2 + 2 + 8 * 3 + 2 + 2
    for sep in separables:
        assert [type(m) for m in sep.depthwise] == [nn.Conv2d]
        assert sep.depthwise[0].groups == sep.depthwise[0].in_channels
        assert isinstance(sep.pointwise[1], nn.BatchNorm2d)  # every separable conv has BN


def test_block_leaves_its_input_alone_for_the_shortcut():
    torch.manual_seed(0)
    block = XceptionBlock(8, (8, 8, 8)).eval()
    x = torch.randn(2, 8, 5, 5)
    before = x.clone()
    out = block(x)
    torch.testing.assert_close(x, before)  # the leading ReLU must not work in place
    torch.testing.assert_close(out, block.residual(before) + before)


def test_forward_backward_small_batch():
    torch.manual_seed(0)
    model = create_model("xception", num_classes=4, in_chans=1)
    assert model.default_input_size == (1, 299, 299)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 4)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_registered_with_paper():
    entry = model_entry("xception")
    assert entry.paper == "Chollet 2017" and entry.family == "xception"
    assert "Table 3" in entry.builder.__doc__


def test_bad_middle_flow_raises_a_clear_error():
    with pytest.raises(ConfigError, match="middle_repeats"):
        Xception(middle_repeats=-1)
