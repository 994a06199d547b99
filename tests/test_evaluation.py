"""Evaluation: top-k, test-time augmentation and ensembles against direct computations."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.checkpoint import model_from_checkpoint
from cnnlab.data import load_dataset
from cnnlab.errors import ConfigError, UnknownNameError
from cnnlab.evaluation import RunningTotals, evaluate, tta_probabilities
from cnnlab.training import resume, train


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A LeNet-5 digits run after 1 epoch and after 2 epochs: two different models."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("evaluate") / "run"
        options = {"data": "digits", "batch_size": 64, "lr": 0.01, "out": str(run_dir)}
        train(model="lenet5", epochs=1, **options)
        shutil.copy(run_dir / "checkpoint.pt", run_dir.parent / "epoch1.pt")
        resume(run_dir, epochs=2)
    finally:
        torch.set_num_threads(before)
    return run_dir.parent / "epoch1.pt", run_dir / "checkpoint.pt"


def digits_test_split():
    """The digits test split, normalised by hand (independent of the loaders)."""
    dataset = load_dataset("digits")
    mean = torch.tensor(dataset.mean).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std).view(1, -1, 1, 1)
    return (dataset.test.images.float() / 255 - mean) / std, dataset.test.labels


@torch.no_grad()
def test_ensemble_with_flip_matches_a_direct_computation(two_checkpoints):
    images, labels = digits_test_split()
    probabilities = 0
    for path in two_checkpoints:
        model, _ = model_from_checkpoint(path)
        probabilities = probabilities + F.softmax(model(images), 1)
        probabilities = probabilities + F.softmax(model(torch.flip(images, dims=[3])), 1)
    expected_top1 = 100 * (probabilities.argmax(1) == labels).double().mean().item()
    result = evaluate(list(two_checkpoints), tta="flip", device="cpu")
    assert result.images == 360
    assert result.top1 == pytest.approx(expected_top1, abs=100 / 360 + 1e-9)
    assert result.top1_error == pytest.approx(100 - result.top1)
    assert result.top1 <= result.top5

    single = evaluate(two_checkpoints[1], device="cpu")
    model, _ = model_from_checkpoint(two_checkpoints[1])
    direct = 100 * (model(images).argmax(1) == labels).double().mean().item()
    assert single.top1 == pytest.approx(direct, abs=100 / 360 + 1e-9)


def test_tta_views():
    seen = []

    class Recorder(nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return x.mean(dim=(2, 3))

    images = torch.randn(2, 3, 32, 32)
    probabilities = tta_probabilities(Recorder(), images, "tencrop")
    assert seen == [(2, 3, 32, 32)] * 10  # AlexNet's 10 patches of a 256/224-enlarged image
    torch.testing.assert_close(probabilities.sum(1), torch.ones(2))
    seen.clear()
    tta_probabilities(Recorder(), images, "multiscale")
    assert seen == [(2, 3, 28, 28), (2, 3, 32, 32), (2, 3, 36, 36)]


def test_flipshift_is_jordans_mirror_and_one_pixel_translations():
    """Against numpy: weight 1/2 on the image and its mirror, 1/2 on the image shifted one
    pixel up-left and down-right (reflect padding), each with its mirror."""
    torch.manual_seed(0)
    images = torch.randn(3, 2, 6, 7)
    weights = torch.randn(2 * 6 * 7, 5)

    def linear(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ weights

    model = nn.Module()
    model.forward = linear
    padded = np.pad(images.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    shifted = [padded[..., :6, :7], padded[..., 2:, 2:]]
    views = [images.numpy(), *shifted]
    expected = 0
    for view, weight in zip(views, (1 / 2, 1 / 4, 1 / 4), strict=True):
        for image in (view, view[..., ::-1]):
            logits = linear(torch.from_numpy(image.copy()))
            expected = expected + weight / 2 * F.softmax(logits, dim=1)
    torch.testing.assert_close(tta_probabilities(model, images, "flipshift"), expected)


def test_adaptive_flipshift_adds_the_shifts_only_where_the_mirror_pair_is_unsure():
    """Rows whose mirror-pair average leads by ADAPTIVE_MARGIN or more get that average
    (numpy's mirror, torch's softmax); the others get flipshift's six views, and only they
    go through the model the four more times."""
    from cnnlab.evaluation import ADAPTIVE_MARGIN

    torch.manual_seed(0)
    images = torch.randn(64, 2, 6, 7)
    weights = 2 * torch.randn(2 * 6 * 7, 5)
    seen = []

    def linear(x: torch.Tensor) -> torch.Tensor:
        seen.append(len(x))
        return x.flatten(1) @ weights

    model = nn.Module()
    model.forward = linear
    mirrored = torch.from_numpy(images.numpy()[..., ::-1].copy())
    pair = (F.softmax(linear(images), 1) + F.softmax(linear(mirrored), 1)) / 2
    top2 = np.sort(pair.numpy(), axis=1)[:, -2:]
    unsure = torch.from_numpy(top2[:, 1] - top2[:, 0] < ADAPTIVE_MARGIN)
    assert 0 < unsure.sum() < len(images)  # both kinds of rows are tested
    six = tta_probabilities(model, images, "flipshift")
    seen.clear()
    got = tta_probabilities(model, images, "flipshift-adaptive")
    torch.testing.assert_close(got[unsure], six[unsure])
    torch.testing.assert_close(got[~unsure], pair[~unsure])
    assert seen == [64, 64, 4 * int(unsure.sum())]


def test_multiscale_needs_global_pooling(two_checkpoints):
    with pytest.raises(ConfigError, match="multi-scale testing needs a network with global"):
        evaluate(two_checkpoints[0], tta="multiscale", device="cpu")
    with pytest.raises(UnknownNameError, match="unknown --tta mode 'mirror'.*flip, tencrop"):
        evaluate(two_checkpoints[0], tta="mirror", device="cpu")


def test_running_totals_match_whole_set_loss_and_accuracy():
    """Batches of different sizes summed on the device give the whole set's mean loss and
    top-1/top-5 accuracy, counted here directly from the ranks of the labels."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 8, generator=generator)
    labels = torch.randint(0, 8, (50,), generator=generator)
    totals = RunningTotals("cpu")
    for start, stop in ((0, 7), (7, 32), (32, 50)):
        batch = logits[start:stop]
        totals.add(batch, labels[start:stop], F.cross_entropy(batch, labels[start:stop]))
    read = totals.read()
    rank = (logits > logits.gather(1, labels[:, None])).sum(dim=1)  # 0: the label scored highest
    assert read.count == 50
    assert read.top1 == pytest.approx(100 * (rank < 1).double().mean().item())
    assert read.top5 == pytest.approx(100 * (rank < 5).double().mean().item())
    assert read.loss == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    assert totals.mean_loss() == pytest.approx(read.loss)
    resumed = RunningTotals("cpu", saved=totals.sums.clone())  # as a checkpoint restores them
    assert resumed.read() == read
