"""Saliency maps against hand-derived gradients and an image whose evidence sits in one patch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from viz_checkpoints import read_png, write_checkpoint, write_png

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.viz.saliency import (
    gradient_saliency,
    input_gradient,
    occlusion_sensitivity,
    relu_backward_rule,
    save_saliency,
    top_class,
)


def test_gradient_saliency_is_the_abs_max_over_channels_of_the_top_logit_gradient():
    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    batch = torch.randn(1, 3, 32, 32)
    target = top_class(model, batch)
    assert target == int(model(batch).argmax())
    image = batch.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(image)[0, target], image)
    expected = gradient[0].abs().max(dim=0).values
    torch.testing.assert_close(gradient_saliency(model, batch, target), expected)


def tiny_net(inplace: bool) -> nn.Sequential:
    """x (2) -> Linear W1 (3x2) -> ReLU -> Linear W2 (1x3), no biases."""
    net = nn.Sequential(
        nn.Linear(2, 3, bias=False), nn.ReLU(inplace=inplace), nn.Linear(3, 1, bias=False)
    )
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 1.0], [-1.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 3.0]]))
    return net


# x = (1, 2): pre-activations W1 x = (-1, 4, 1), so the ReLU passes units 2 and 3 forward.
# The signal arriving at the ReLU from above is W2 = (1, -2, 3).
#   plain gradient: forward mask (0, 1, 1)            -> (0, -2, 3) -> W1^T (0, -2, 3) = (-7, 1)
#   guided:  forward mask and positive signal (0,0,1) -> (0, 0, 3)  -> W1^T (0, 0, 3)  = (-3, 3)
#   deconvnet: ReLU of the signal, no forward mask    -> (1, 0, 3)  -> W1^T (1, 0, 3)  = (-2, 2)
HAND_DERIVED = {None: [-7.0, 1.0], "guided": [-3.0, 3.0], "deconvnet": [-2.0, 2.0]}


@pytest.mark.parametrize("inplace", [False, True])
def test_relu_rules_match_the_hand_derived_backward_pass(inplace):
    net = tiny_net(inplace)
    x = torch.tensor([[1.0, 2.0]])
    for rule, expected in HAND_DERIVED.items():
        assert input_gradient(net, x, 0, rule).tolist() == expected
    # the model is restored: its ReLU is an ordinary ReLU again
    assert "forward" not in vars(net[1])
    assert input_gradient(net, x, 0).tolist() == HAND_DERIVED[None]


def test_rule_reaches_a_relu_module_used_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.relu = nn.Linear(1, 1, bias=False), nn.Linear(1, 1), nn.ReLU()
            with torch.no_grad():
                self.a.weight.fill_(1.0)
                self.b.weight.fill_(-1.0)
                self.b.bias.fill_(3.0)

        def forward(self, x):
            return self.relu(self.b(self.relu(self.a(x))))

    # x = 1: relu(1) = 1, b = -1 + 3 = 2 > 0; d out / d x = 1 * (-1) * 1 = -1.
    # Guided: the signal -1 reaching the inner ReLU is negative and is stopped -> 0.
    x = torch.tensor([[1.0]])
    assert input_gradient(Twice(), x, 0).item() == -1.0
    assert input_gradient(Twice(), x, 0, "guided").item() == 0.0


def test_rules_need_relu_modules():
    with pytest.raises(CnnlabError, match="no nn.ReLU"):
        with relu_backward_rule(nn.Sequential(nn.Linear(2, 2)), "guided"):
            pass


class PatchEvidence(nn.Module):
    """Class 0's logit is 8 x the mean of the patch rows 8-15, columns 20-27; class 1's is 0."""

    def forward(self, x):
        evidence = 8 * x[:, :, 8:16, 20:28].mean(dim=(1, 2, 3))
        return torch.stack([evidence, torch.zeros_like(evidence)], dim=1)


def test_occlusion_peaks_on_the_informative_patch():
    image = torch.zeros(1, 1, 32, 32)
    image[..., 8:16, 20:28] = 1.0
    drops = occlusion_sensitivity(PatchEvidence(), image, target=0, patch=4, stride=2)
    assert drops.shape == (32, 32)
    row, column = divmod(int(drops.argmax()), 32)
    assert 8 <= row < 16 and 20 <= column < 28
    assert drops[20:, :16].abs().max() == 0  # covering empty background changes nothing
    # covering a quarter of the patch: p0 falls from sigmoid(8) to sigmoid(6)
    full = torch.sigmoid(torch.tensor(8.0)) - torch.sigmoid(torch.tensor(6.0))
    torch.testing.assert_close(drops[10, 22], full, atol=0.02, rtol=0.5)


def test_command_draws_four_maps_that_follow_the_image(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "run" / "best.pt", seed=3)
    square = np.zeros((32, 32), np.uint8)
    square[4:14, 4:14] = 255
    cross = np.zeros((32, 32), np.uint8)
    cross[14:18, :] = 255
    cross[:, 14:18] = 255
    path_a, maps, class_name = save_saliency(checkpoint, write_png(tmp_path / "s.png", square))
    path_b, _, _ = save_saliency(
        checkpoint, write_png(tmp_path / "c.png", cross), out=tmp_path / "cross.png"
    )
    assert path_a == tmp_path / "run" / "best_saliency.png"
    assert maps.gradient.shape == (32, 32) and maps.guided.shape == (1, 32, 32)
    assert class_name == str(maps.target)
    picture_a, picture_b = read_png(path_a), read_png(path_b)
    assert picture_a.shape == picture_b.shape and picture_a.shape[1] > 1200
    assert (picture_a != picture_b).mean() > 0.01


def test_lenet5_without_relus_gets_the_gradient_and_occlusion_maps(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "run" / "best.pt", model_name="lenet5", seed=1)
    digit = np.zeros((32, 32), np.uint8)
    digit[6:26, 14:18] = 255
    path, maps, _ = save_saliency(checkpoint, write_png(tmp_path / "one.png", digit))
    assert maps.guided is None and maps.deconvnet is None
    assert "guided backpropagation and deconvnet skipped" in maps.skipped
    assert "LeNet" in maps.skipped
    assert maps.gradient.shape == (32, 32) and float(maps.gradient.max()) > 0
    assert maps.occlusion.shape == (32, 32)
    # three panels (input, gradient, occlusion), so narrower than the five-panel picture
    assert path.is_file() and read_png(path).shape[1] < 1200


@pytest.mark.parametrize("target", [10, -1])
def test_a_target_outside_the_classes_is_refused(tmp_path, target):
    checkpoint = write_checkpoint(tmp_path / "run" / "best.pt", seed=2)
    image = write_png(tmp_path / "x.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(CnnlabError, match="10 classes, 0 to 9"):
        save_saliency(checkpoint, image, target=target)
