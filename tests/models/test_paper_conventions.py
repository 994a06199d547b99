"""Where papers and torchvision differ, cnnlab offers the paper's form and says which is which.

ResNet-50/101/152: He et al. 2016a, Table 1 gives 3.8, 7.6 and 11.3 x 10^9 multiply-adds with
the stride in the first 1x1 convolution of a downsampling bottleneck; torchvision strides the
3x3 ("v1.5"). GoogLeNet: Szegedy et al. 2015, Table 1 counts no auxiliary classifier.
"""

from __future__ import annotations

import pytest
from model_checks import n_params, torch_macs

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.models.resolve import create_on_meta
from cnnlab.sizing.zoo_table import model_notes

# He et al. 2016a, Table 1, "FLOPs" (multiply-adds), x 10^9
PAPER_GMACS = {"resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}


@pytest.mark.parametrize("name", sorted(PAPER_GMACS))
def test_paper_stride_placement_gives_the_papers_multiply_adds(name):
    paper, v15 = create_on_meta(f"{name}_paper"), create_on_meta(name)
    sized = cnnlab.summary(paper).macs / 1e9
    assert sized == pytest.approx(
        torch_macs(paper, (3, 224, 224)) / 1e9, rel=1e-3
    )  # cnnlab's sizing agrees
    assert abs(sized - PAPER_GMACS[name]) < 0.07  # the paper's figure, to its rounding
    assert cnnlab.summary(v15).macs / 1e9 - sized > 0.2  # torchvision's v1.5 costs more
    # the same weights: the stride moves, no parameter does
    assert {k: v.shape for k, v in paper.state_dict().items()} == {
        k: v.shape for k, v in v15.state_dict().items()
    }


def test_stride_in_1x1_moves_the_stride_of_downsampling_bottlenecks_only():
    model = create_on_meta("resnet50", stride_in_1x1=True)
    block = model.layer2[0]
    assert (block.conv1.stride, block.conv2.stride) == ((2, 2), (1, 1))
    assert model.layer2[1].conv1.stride == (1, 1)
    with pytest.raises(ConfigError, match="bottleneck"):
        create_on_meta("resnet18", stride_in_1x1=True)


def test_models_table_names_each_resnets_stride_convention():
    assert model_notes(create_on_meta("resnet50")) == "stride in the 3x3 (torchvision v1.5)"
    assert model_notes(create_on_meta("resnet50_paper")) == "stride in the 1x1 (paper)"
    assert model_notes(create_on_meta("resnet20")) == ""


def test_googlenet_parameters_with_and_without_the_auxiliary_classifiers():
    model = create_on_meta("googlenet_paper")
    total = n_params(model)
    without = total - n_params(model.aux1) - n_params(model.aux2)
    assert f"{without:,} parameters without the auxiliary classifiers" in model_notes(model)
    # Szegedy et al. 2015, Table 1 sums to 6.8M (its rows rounded); the aux heads add ~6.4M
    assert 6.7e6 < without < 7.1e6 and total > 13e6
