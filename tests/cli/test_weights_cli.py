"""MODEL_OR_CHECKPOINT on the command line: a model name with --weights/--weights-file.

The ImageNet metadata comes from torchvision's registry; the weights are random ones saved
from torchvision's own models (no download here).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.models import get_model_weights

import cnnlab as cnnlab_package


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights-cli")
    torch.manual_seed(0)
    for name in ("alexnet", "squeezenet1_1"):
        torch.save(getattr(torchvision.models, name)().state_dict(), root / f"{name}-random.pth")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)).save(root / "photo.png")
    return root


def test_filters_of_alexnet_with_imagenet_weights_metadata(files, cnnlab):
    done = cnnlab(
        "filters", "alexnet", "--weights", "IMAGENET1K_V1",
        "--weights-file", files / "alexnet-random.pth", "--out", files / "filters.png",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("features.0: 64 filters of 11×11×3")
    assert (files / "filters.png").stat().st_size > 10_000


def test_features_by_summary_names_with_the_weights_transforms(files, cnnlab):
    done = cnnlab(
        "features", "squeezenet1_1", files / "photo.png", "--weights", "DEFAULT",
        "--weights-file", files / "squeezenet1_1-random.pth",
        "--layers", "features.0,features.3.expand1x1_activation", "--out", files / "f.png",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "torchvision's squeezenet1_1 IMAGENET1K_V1 transforms" in lines[0]
    assert lines[1].startswith("  features.0: (64, 111, 111)")  # 224 crop, 3×3 stride 2
    assert lines[2].startswith("  features.3.expand1x1_activation: (64, 55, 55)")


def test_predict_names_imagenet_classes(files, cnnlab):
    done = cnnlab(
        "predict", "squeezenet1_1", files / "photo.png", "--weights", "IMAGENET1K_V1",
        "--weights-file", files / "squeezenet1_1-random.pth", "--top", "2", "--tta", "tencrop",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    categories = get_model_weights("squeezenet1_1").IMAGENET1K_V1.meta["categories"]
    first = done.stdout.splitlines()[2].split("%", 1)[1].strip()  # "tench (0)"
    name, index = first.rsplit(" (", 1)
    assert categories[int(index.rstrip(")"))] == name
    assert "shorter side 256, centre crop 224×224" in done.stdout.splitlines()[0]


def test_evaluate_a_model_name_with_a_weights_file(files, cnnlab):
    torch.manual_seed(0)
    model = cnnlab_package.create_model("lenet5")
    torch.save(model.state_dict(), files / "lenet5.pth")
    done = cnnlab("evaluate", "lenet5", "--weights-file", files / "lenet5.pth", "--data", "digits")
    assert done.returncode == 0, done.stderr
    assert "lenet5 on digits test split (360 images)" in done.stdout
    no_data = cnnlab("evaluate", "lenet5", "--weights-file", files / "lenet5.pth")
    assert no_data.returncode == 2 and "name one with --data" in no_data.stderr


def test_wrong_weights_are_one_line(files, cnnlab):
    done = cnnlab("filters", "alexnet", "--weights-file", files / "squeezenet1_1-random.pth")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "does not fit model 'alexnet'" in done.stderr and "unexpected" in done.stderr
