"""The weights cnnlab ships (``cnnlab/weights/``): files, provenance, loading and accuracy."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import cnnlab
from cnnlab.machine import bf16_supported
from cnnlab.models.weights import OWN_WEIGHTS_DIR, available_weights

REPO = Path(__file__).resolve().parents[2]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR10_CLASSES += ["dog", "frog", "horse", "ship", "truck"]
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
SHIPPED = ("resnet20", "speedrun_cifar_net")  # the models trained on CIFAR-10 by cnnlab's recipes


def _records() -> list[Path]:
    return sorted(OWN_WEIGHTS_DIR.glob("*.json"))


def test_the_cifar10_weights_are_shipped_for_resnet20_and_the_speedrun_net():
    names = {path.stem for path in _records()}
    assert {f"{model}.cifar10" for model in SHIPPED} <= names
    for model in SHIPPED:
        assert "cifar10" in available_weights(model)


@pytest.mark.parametrize("record", _records(), ids=lambda path: path.stem)
def test_each_file_matches_its_sha256_and_provenance(record):
    provenance = json.loads(record.read_text())
    weights = record.with_suffix(".safetensors")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == provenance["sha256"]
    model_name = record.name.split(".")[0]
    assert provenance["config"]["model"] == model_name
    assert provenance["recipe"] == provenance["config"]["recipe"]
    assert provenance["seed"] == provenance["config"]["seed"]
    assert provenance["epoch"] == provenance["config"]["epochs"]  # the final epoch, not the best
    assert provenance["data"]["classes"] == CIFAR10_CLASSES
    assert 0 < float(provenance["metrics"]["test_top1"]) <= 100
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[provenance["dtype"]]
    tensors = load_file(weights)
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {dtype}


@pytest.mark.parametrize("model_name", SHIPPED)
def test_loading_builds_the_registered_model_with_every_tensor_from_the_file(model_name):
    model = cnnlab.create_model(model_name, weights="cifar10")
    reference = cnnlab.create_model(model_name)
    assert type(model) is type(reference)
    tensors = load_file(OWN_WEIGHTS_DIR / f"{model_name}.cifar10.safetensors")
    state = model.state_dict()
    assert set(tensors) == set(state)
    for key, tensor in tensors.items():
        assert torch.equal(state[key], tensor.to(state[key].dtype)), key
    assert model.weights_info.categories == tuple(CIFAR10_CLASSES)
    assert model.weights_info.preprocessing.crop == (32, 32)


@pytest.fixture(scope="module")
def cifar_test_split(tmp_path_factory) -> Path:
    """The shared CIFAR-10's 10,000 test images (and one training image per class, which the
    folder layout needs; the weights bring their own training-set mean and std)."""
    if not SHARED_CIFAR.is_file() or shutil.which("tar") is None:
        pytest.skip(f"{SHARED_CIFAR} (the shared CIFAR-10) is not on this machine")
    root = tmp_path_factory.mktemp("cifar10")
    members = ["test", "train/*/0000.jpg"]
    command = ["tar", "xzf", str(SHARED_CIFAR), "-C", str(root), "--wildcards", *members]
    subprocess.run(command, check=True)
    return root


def _recorded_evaluations():
    for record in _records():
        evaluation = json.loads(record.read_text())["evaluation"]
        for tta in evaluation["fp32"]["top1"]:
            model = record.name.split(".")[0]
            yield pytest.param(model, tta, evaluation, id=f"{record.stem}-{tta}")


@pytest.mark.parametrize(("model_name", "tta", "recorded"), list(_recorded_evaluations()))
def test_evaluate_reproduces_the_recorded_accuracy(model_name, tta, recorded, cifar_test_split):
    """``cnnlab evaluate MODEL --weights cifar10`` on the shared CIFAR-10's test split gives
    the accuracy the provenance records for the precision it ran in (bf16 where the machine
    has it natively, else float32; both measured when the weights were published) within
    0.05 pp."""
    result = cnnlab.evaluate(
        model_name, weights="cifar10", data="cifar10", data_dir=cifar_test_split, tta=tta
    )
    assert result.images == recorded["images"] == 10_000
    assert result.precision == ("bf16" if bf16_supported(torch.device("cpu")) else "fp32")
    assert result.top1 == pytest.approx(recorded[result.precision]["top1"][tta], abs=0.05)


def test_the_two_recorded_precisions_agree_within_a_few_tenths():
    """bf16 and float32 evaluations of the same weights differ by rounding only."""
    for record in _records():
        evaluation = json.loads(record.read_text())["evaluation"]
        for tta, fp32 in evaluation["fp32"]["top1"].items():
            assert evaluation["bf16"]["top1"][tta] == pytest.approx(fp32, abs=0.3), record.name


@pytest.mark.parametrize("model_name", SHIPPED)
def test_predict_names_the_classes_of_real_photographs(model_name, cifar_test_split, cnnlab):
    """`cnnlab predict MODEL IMAGE... --weights cifar10` on the first five test photographs
    of each class: the top class is right for at least 40 of the 50 (the weights are about
    90% accurate on the whole test split)."""
    images = sorted((cifar_test_split / "test").glob("*/000[0-4].jpg"))
    assert len(images) == 50
    done = cnnlab("predict", model_name, *map(str, images), "--weights", "cifar10", "--top", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[1:]
    predicted = [line.split()[1] for line in lines[1::2]]  # "69.88%  ship (8)"
    assert [line.rstrip(":") for line in lines[::2]] == list(map(str, images))
    right = sum(p == image.parent.name for p, image in zip(predicted, images, strict=True))
    assert right >= 40
