"""Stochastic depth: Huang et al.'s linear decay rule and torchvision's row-wise dropping."""

import pytest
import torch
from torchvision.ops import StochasticDepth

from cnnlab.errors import CnnlabError
from cnnlab.nn.drop_path import (
    PAPER_FINAL_SURVIVAL,
    DropPath,
    drop_probabilities,
    resolve_drop_path,
    survival_probabilities,
)


def test_linear_decay_matches_huang_fig2():
    # Huang et al. 2016, Eq. 4 / Fig. 2: p_0 = 1 at the input, p_L = 0.5 at the last block.
    # Closed form for L = 4: p_l = 1 - l/4 * 0.5.
    assert survival_probabilities(4, 0.5) == pytest.approx([0.875, 0.75, 0.625, 0.5])
    assert PAPER_FINAL_SURVIVAL == 0.5


def test_decay_for_resnet110_has_54_blocks_ending_at_p_L():
    probs = survival_probabilities(54, 0.5)
    assert len(probs) == 54
    assert probs[0] == pytest.approx(1 - 0.5 / 54)
    assert probs[-1] == pytest.approx(0.5)
    steps = [a - b for a, b in zip(probs, probs[1:], strict=False)]
    assert steps == pytest.approx([0.5 / 54] * 53)  # linear


def test_drop_probabilities_are_one_minus_survival():
    assert drop_probabilities(4, 0.5) == pytest.approx([0.125, 0.25, 0.375, 0.5])
    assert drop_probabilities(5, 0.2) == pytest.approx([0.04, 0.08, 0.12, 0.16, 0.2])
    assert drop_probabilities(3, 0.0) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("given", "expected"), [(True, 0.5), (False, 0.0), (0, 0.0), (0.2, 0.2), (0.9, 0.9)]
)
def test_resolve_drop_path(given, expected):
    assert resolve_drop_path(given) == expected


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, "0.5", None])
def test_bad_drop_path_says_what_to_pass(bad):
    with pytest.raises(CnnlabError, match="drop probability"):
        resolve_drop_path(bad)


def test_drop_path_is_torchvision_stochastic_depth_in_row_mode():
    layer = DropPath(0.3)
    assert isinstance(layer, StochasticDepth)
    assert layer.mode == "row" and layer.p == 0.3
    assert list(layer.state_dict()) == []


def test_empirical_survival_rate_in_train_mode():
    torch.manual_seed(0)
    layer = DropPath(0.3).train()
    x = torch.ones(40_000, 2, 3, 3)
    out = layer(x)
    per_row = out.flatten(1)
    dropped = (per_row == 0).all(1)
    kept = ~dropped
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.01)
    # Whole rows are dropped or kept; kept rows are scaled by 1 / survival.
    assert torch.allclose(per_row[kept], torch.full_like(per_row[kept], 1 / 0.7))


def test_identity_in_eval_mode_and_when_p_is_zero():
    x = torch.randn(8, 4, 5, 5)
    assert torch.equal(DropPath(0.9).eval()(x), x)
    assert torch.equal(DropPath(0.0).train()(x), x)


def test_summary_note_states_survival_probability():
    assert "0.75" in DropPath(0.25).summary_note()
