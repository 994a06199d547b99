"""MODEL_OR_CHECKPOINT and ``predict``: a tiny trained run, its published weights, user images.

References are computed independently: the run's own test images fed by hand through the
checkpoint's model, torchvision's own ImageNet transforms, the accuracy the run logged.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.models import get_model_weights

import cnnlab
from cnnlab.checkpoint import model_from_checkpoint
from cnnlab.data import load_dataset
from cnnlab.evaluation import evaluate, predict
from cnnlab.model_source import load_source, prepare_image
from cnnlab.models import weights as weights_module
from cnnlab.models.weights import resolve_weights
from cnnlab.publish import publish_weights
from cnnlab.run_metrics import read_metrics


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """LeNet-5 trained for two epochs on the bundled digits."""
    out = tmp_path_factory.mktemp("predict") / "run"
    cnnlab.train(model="lenet5", data="digits", epochs=2, out=str(out), seed=0)
    return out


@pytest.fixture(scope="module")
def digit_images(run_dir):
    """Three test digits saved as PNG at the stored size, with their labels and pixels."""
    test = load_dataset("digits").test
    paths, pixels = [], []
    for index in range(3):
        image = test.images[index, 0].numpy()
        path = run_dir.parent / f"digit{index}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
        pixels.append(torch.from_numpy(image))
    return paths, torch.stack(pixels), test.labels[:3]


def test_predict_on_a_checkpoint_matches_the_model_fed_by_hand(run_dir, digit_images):
    paths, pixels, _ = digit_images
    predictions, how = predict(run_dir / "best.pt", paths, top=3)
    model, _ = model_from_checkpoint(run_dir / "best.pt")
    data = load_dataset("digits")
    batch = ((pixels.float() / 255 - data.mean[0]) / data.std[0]).unsqueeze(1)
    with torch.no_grad():
        expected = F.softmax(model(batch), dim=1)
    for prediction, row in zip(predictions, expected, strict=True):
        probabilities, indices = row.topk(3)
        assert [i for i, _, _ in prediction.top] == indices.tolist()
        assert [name for _, name, _ in prediction.top] == [str(i) for i in indices.tolist()]
        assert [p for _, _, p in prediction.top] == pytest.approx(probabilities.tolist(), abs=1e-5)
    assert "digits training set" in how and "best.pt" in how


def test_run_directory_and_tta(run_dir, digit_images):
    paths, _, _ = digit_images
    plain, _ = predict(run_dir, paths[:1], top=10)
    assert sum(p for _, _, p in plain[0].top) == pytest.approx(1.0, abs=1e-5)
    flipped, _ = predict(run_dir, paths[:1], top=10, tta="flip")
    assert flipped[0].top != plain[0].top


def test_published_weights_load_by_name_and_reproduce_the_logged_accuracy(
    run_dir, tmp_path, monkeypatch
):
    weights_file, record_file = publish_weights(run_dir, "digits", tmp_path)
    record = json.loads(record_file.read_text())
    final = read_metrics(run_dir / "metrics.csv")[-1]
    assert record["metrics"]["test_top1"] == pytest.approx(final["test_top1"])
    assert record["recipe"] and record["seed"] == 0 and record["data"]["classes"][3] == "3"
    monkeypatch.setattr(weights_module, "OWN_WEIGHTS_DIR", tmp_path)
    assert cnnlab.models.model_entry("lenet5").weights == ["digits"]
    model = cnnlab.create_model("lenet5", weights="DEFAULT")
    trained, _ = model_from_checkpoint(run_dir)
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    result = evaluate("lenet5", weights="digits", device="cpu")
    assert result.data == "digits"
    assert result.top1 == pytest.approx(final["test_top1"], abs=0.05)


def test_predict_with_named_weights_uses_their_classes(
    run_dir, digit_images, tmp_path, monkeypatch
):
    publish_weights(run_dir, "digits", tmp_path)
    monkeypatch.setattr(weights_module, "OWN_WEIGHTS_DIR", tmp_path)
    paths, _, _ = digit_images
    by_name, how = predict("lenet5", paths, weights="digits", top=2)
    by_run, _ = predict(run_dir, paths, top=2)
    assert [p.top for p in by_name] == [p.top for p in by_run]
    assert "digits weights" in how


def test_imagenet_preprocessing_is_torchvisions(tmp_path):
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (3, 300, 411), dtype=np.uint8))
    for model, name in [("resnet50", "IMAGENET1K_V2"), ("inception_v3", "IMAGENET1K_V1")]:
        ours, _ = prepare_image(image, resolve_weights(model, name).preprocessing)
        reference = getattr(get_model_weights(model), name).transforms()(image)
        torch.testing.assert_close(ours, reference)


def test_checkpoint_with_weights_is_refused(run_dir):
    with pytest.raises(cnnlab.CnnlabError, match="carries its own weights"):
        load_source(run_dir, weights="DEFAULT")


def test_predict_command(run_dir, digit_images, cnnlab):
    paths, _, _ = digit_images
    done = cnnlab("predict", run_dir, *paths[:2], "--top", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "normalised with the mean and std of the digits training set" in lines[0]
    assert lines[1] == f"{paths[0]}:" and lines[2].strip().endswith(tuple("0123456789"))
    assert len(lines) == 1 + 2 * 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet56", "{image}", "--weights", "DEFAULT"], "has no pretrained weights"),
        (["alexnet_paper", "{image}", "--weights", "IMAGENET1K_V1"], "registered as 'alexnet'"),
        (["{run}", "{image}", "--weights", "DEFAULT"], "carries its own weights"),
        (["{run}", "missing.png"], "no image at missing.png"),
        (["{run}", "{image}", "--top", "0"], "--top must be at least 1"),
        (["lenet5", "{image}", "--weights-file", "nothing.pt"], "no file at nothing.pt"),
    ],
)
def test_predict_mistakes_are_one_line(run_dir, digit_images, cnnlab, args, message):
    values = {"run": str(run_dir), "image": str(digit_images[0][0])}
    done = cnnlab("predict", *(a.format(**values) for a in args))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_evaluating_published_weights_uses_their_runs_precision(run_dir, tmp_path, monkeypatch):
    publish_weights(run_dir, "digits", tmp_path)
    monkeypatch.setattr(weights_module, "OWN_WEIGHTS_DIR", tmp_path)
    recorded = load_source(run_dir).run_config
    result = evaluate("lenet5", weights="digits", device="cpu")
    expected = "bf16" if recorded.get("eval_amp", recorded.get("amp")) else "fp32"
    assert result.precision == expected
    assert load_source("lenet5", weights="digits").run_config == recorded
