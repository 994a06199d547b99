"""benchmarks/tta_views.py: its view sets rebuilt from per-view softmax outputs agree with
cnnlab's own test-time augmentation (``flip``, ``flipshift``) on the same model and images."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.evaluation import tta_probabilities


@pytest.fixture(scope="module")
def script(load_benchmark):
    return load_benchmark("tta_views")


class _Batches:
    def __init__(self, images, labels):
        self.batches = [(images[:5], labels[:5]), (images[5:], labels[5:])]

    def epoch(self, _):
        return iter(self.batches)


@pytest.mark.parametrize(
    ("view_set", "mode"), [("flip", "flip"), ("flipshift (6 views)", "flipshift")]
)
def test_view_sets_score_as_cnnlab_tta_does(script, view_set, mode):
    torch.manual_seed(0)
    # position-sensitive (no global pooling), so every translation changes the output
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    images, labels = torch.randn(12, 3, 8, 8), torch.randint(0, 5, (12,))
    with torch.no_grad():
        probabilities, seen = script.view_probabilities(model, _Batches(images, labels), amp=False)
        expected = tta_probabilities(model, images, mode)
    views = script.VIEW_SETS[view_set]
    torch.testing.assert_close(script.combine(probabilities, views), expected)
    assert script.top1(probabilities, seen, views) == pytest.approx(
        100 * (expected.argmax(1) == labels).float().mean().item()
    )


def test_the_margin_sweep_scores_as_cnnlab_adaptive_mode_does(script):
    from cnnlab.evaluation import ADAPTIVE_MARGIN

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    with torch.no_grad():
        model[2].weight.mul_(20)  # confident on some images, unsure on others
        images, labels = torch.randn(40, 3, 8, 8), torch.randint(0, 5, (40,))
        probabilities, _ = script.view_probabilities(model, _Batches(images, labels), amp=False)
        expected = tta_probabilities(model, images, "flipshift-adaptive")
    scores, unsure = script.adaptive(probabilities, ADAPTIVE_MARGIN)
    assert 0 < unsure.sum() < len(images)
    torch.testing.assert_close(scores, expected)
