"""Inception v3: torchvision compatibility, published sizes, the auxiliary head."""

import pytest
import torch
import torchvision
from model_checks import (
    on_meta,
    output_shapes,
    randomize_batch_norm,
    torch_macs,
    with_weights_of,
)

from cnnlab.errors import GeometryError
from cnnlab.models import create_model
from cnnlab.models.inception import inception_v3

# torchvision 0.2x, Inception_V3_Weights.IMAGENET1K_V1.meta: num_params (with the auxiliary
# classifier), "_ops" (GMACs at 299x299, eval mode) and min_size. The lecture's model table
# (shared/seeds/001_d61e5c94ff303ee0.txt) prints the same model as 27.16M parameters.
TORCHVISION_INCEPTION_V3 = {"params": 27_161_264, "gmacs": 5.713, "min_size": 75}
LECTURE_PARAMS_M = 27.16

# Table 1 of Szegedy et al. 2016 (input 299x299x3): the grid sizes each stage hands on.
PAPER_GRID_SIZES = {
    "maxpool2": (192, 35, 35),
    "Mixed_5d": (288, 35, 35),
    "Mixed_6e": (768, 17, 17),
    "Mixed_7c": (2048, 8, 8),
    "fc": (1000,),
}


@pytest.mark.parametrize("aux_logits", [True, False])
def test_keys_shapes_and_parameter_count_match_torchvision(aux_logits):
    reference = on_meta(
        torchvision.models.inception_v3, weights=None, aux_logits=aux_logits, init_weights=True
    )
    model = on_meta(inception_v3, aux_logits=aux_logits)
    model.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    if aux_logits:
        assert count == TORCHVISION_INCEPTION_V3["params"]
        assert round(count / 1e6, 2) == LECTURE_PARAMS_M


def test_eval_outputs_match_torchvision_at_the_smallest_input():
    torch.manual_seed(0)
    reference = torchvision.models.inception_v3(weights=None, num_classes=10, init_weights=False)
    randomize_batch_norm(reference)
    model = with_weights_of(reference, inception_v3, num_classes=10)
    side = TORCHVISION_INCEPTION_V3["min_size"]
    x = torch.randn(2, 3, side, side)
    for transform_input in (False, True):  # a plain flag read by both forward passes
        reference.transform_input = model.transform_input = transform_input
        with torch.no_grad():
            ours, theirs = model.eval()(x), reference.eval()(x)
        assert theirs.abs().max() > 1e-2
        assert (ours - theirs).abs().max() < 1e-5, transform_input


def test_training_matches_torchvision_at_the_smallest_input():
    # Without the auxiliary head (it needs 299x299), 75x75 is the smallest input that trains.
    torch.manual_seed(0)
    reference = torchvision.models.inception_v3(
        weights=None, num_classes=10, aux_logits=False, init_weights=False
    )
    model = with_weights_of(reference, inception_v3, num_classes=10, aux_logits=False)
    x = torch.randn(2, 3, 75, 75)
    torch.manual_seed(5)
    logits = model.train()(x)
    torch.manual_seed(5)
    with torch.no_grad():
        theirs = reference.train()(x)
    assert (logits - theirs).abs().max() < 1e-5
    logits.sum().backward()
    assert model.Conv2d_1a_3x3.conv.weight.grad.abs().sum() > 0


def test_auxiliary_head_matches_torchvision_on_the_17x17_grid():
    # The head alone, on the Mixed_6e grid a 299x299 input produces: the whole net at 299x299
    # in training mode is run by tests/models/test_every_model.py.
    torch.manual_seed(0)
    reference = torchvision.models.inception_v3(weights=None, num_classes=10, init_weights=False)
    model = with_weights_of(reference, inception_v3, num_classes=10)
    grid = torch.randn(2, 768, 17, 17)
    ours = model.AuxLogits.train()(grid)
    with torch.no_grad():
        theirs = reference.AuxLogits.train()(grid)
    assert ours.shape == (2, 10)
    assert (ours - theirs).abs().max() < 1e-5
    ours.sum().backward()
    assert model.AuxLogits.conv0.conv.weight.grad.abs().sum() > 0


def test_grid_sizes_follow_table1():
    paths = {name: name for name in PAPER_GRID_SIZES}
    assert output_shapes(on_meta(inception_v3), paths, (3, 299, 299)) == PAPER_GRID_SIZES


def test_macs_match_torchvision():
    assert round(torch_macs(on_meta(inception_v3)) / 1e9, 3) == TORCHVISION_INCEPTION_V3["gmacs"]


def test_summary_sizes_it_like_torchvision():
    from cnnlab.sizing import summary

    report = summary("inception_v3")
    assert report.total_params == TORCHVISION_INCEPTION_V3["params"]
    assert round(report.macs / 1e9, 3) == TORCHVISION_INCEPTION_V3["gmacs"]


def test_defaults():
    model = on_meta(inception_v3)
    reference = on_meta(torchvision.models.inception_v3, weights=None, init_weights=True)
    assert (model.aux_logits, model.transform_input) == (reference.aux_logits, False)
    assert model.dropout.p == reference.dropout.p == 0.5
    assert model.default_input_size == (3, 299, 299)
    assert model.aux_loss_weight == 0.4
    assert on_meta(inception_v3, transform_input=True).transform_input


def test_classes_and_channels_through_the_registry_on_meta():
    model = on_meta(create_model, name="inception_v3", num_classes=7, in_chans=1)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.default_input_size == (1, 299, 299)
    with torch.device("meta"):
        logits, aux = model.train()(torch.empty(2, 1, 299, 299))
        assert logits.shape == aux.shape == (2, 7)
        assert model.eval()(torch.empty(2, 1, 75, 75)).shape == (2, 7)


def test_auxiliary_head_explains_inputs_below_299():
    model = on_meta(inception_v3).train()
    with torch.device("meta"), pytest.raises(GeometryError, match="at least 299x299"):
        model(torch.empty(2, 3, 75, 75))
    without_aux = on_meta(inception_v3, aux_logits=False).train()
    with torch.device("meta"):
        assert without_aux(torch.empty(2, 3, 75, 75)).shape == (2, 1000)
