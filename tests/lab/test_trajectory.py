"""`cnnlab train --save-trajectory` keeps each epoch's weights; the lab's PCA plane of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from cnnlab.checkpoint import load_checkpoint
from cnnlab.lab.content import trajectory_plane
from cnnlab.model_source import load_source


@pytest.fixture(scope="module")
def run(tmp_path_factory, cnnlab):
    out = tmp_path_factory.mktemp("trajectory") / "lenet5"
    result = cnnlab("train", "lenet5", "--epochs", "3", "--save-trajectory", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_every_epoch_is_kept_and_the_last_is_the_checkpoint(run):
    snapshots = sorted((run / "trajectory").glob("*.pt"))
    assert [s.name for s in snapshots] == ["epoch-0001.pt", "epoch-0002.pt", "epoch-0003.pt"]
    last, checkpoint = load_checkpoint(snapshots[-1]), load_checkpoint(run / "checkpoint.pt")
    assert last["epoch"] == checkpoint["epoch"] == 3
    for name, weights in checkpoint["model"].items():
        assert torch.equal(last["model"][name], weights), name
    first = load_checkpoint(snapshots[0])["model"]
    assert any(not torch.equal(first[n], w) for n, w in checkpoint["model"].items())


def test_runs_without_the_flag_keep_no_trajectory(cnnlab, tmp_path):
    result = cnnlab("train", "lenet5", "--epochs", "1", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "run" / "trajectory").exists()


def test_pca_plane_matches_scikit_learn(run):
    model = load_source(run / "checkpoint.pt").model
    plane = trajectory_plane(model, run / "trajectory")
    final = {n: p.detach() for n, p in model.named_parameters() if p.dim() > 1}
    rows = []
    for file in sorted((run / "trajectory").glob("*.pt")):
        state = load_checkpoint(file)["model"]
        rows.append(torch.cat([(state[n] - w).flatten() for n, w in final.items()]).numpy())
    reference = PCA(n_components=2).fit(np.array(rows, dtype=np.float64))
    assert plane.explained == pytest.approx(reference.explained_variance_ratio_.sum(), rel=1e-6)
    ours = np.array([plane.alphas, plane.betas]).T
    theirs = reference.transform(np.array(rows, dtype=np.float64))
    for k in range(2):  # a component's sign is arbitrary
        centred = ours[:, k] - ours[:, k].mean()
        sign = np.sign(centred @ theirs[:, k])
        np.testing.assert_allclose(sign * centred, theirs[:, k], atol=1e-4)
    assert ours[-1] == pytest.approx([0.0, 0.0])  # the final weights are the plane's origin
    for direction in plane.directions:
        assert all(not direction[n].any() for n, p in model.named_parameters() if p.dim() <= 1)


def test_lab_prints_the_share_of_variance_and_draws_the_path(cnnlab, run, tmp_path):
    out = tmp_path / "lab.html"
    result = cnnlab(
        "lab", run / "checkpoint.pt", "--export", out, "--surfaces", "saddle", "--grid", "3"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("training path of 3 epochs; the PCA plane explains ")
    assert lines[-1].startswith("lab page (") and lines[-1].endswith(f"-> {out}")
    assert '"trajectory":{"alphas":' in out.read_text()
