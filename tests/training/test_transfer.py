"""Transfer learning: ``cnnlab train MODEL --init-weights ... --freeze-until LAYER``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import cnnlab
from cnnlab.checkpoint import load_checkpoint
from cnnlab.errors import UnknownNameError
from cnnlab.models.transfer import freeze_until


def _folder_dataset(root, per_class: int) -> None:
    """Two classes of 32×32 pictures (reddish and bluish noise) in train/ and test/."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for label, channel in (("blue", 2), ("red", 0)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
                pixels[..., channel] += 120
                Image.fromarray(pixels).save(folder / f"{index}.png")


def test_fine_tuning_trains_only_the_layers_after_the_frozen_ones(tmp_path, cnnlab):
    _folder_dataset(tmp_path / "pictures", per_class=8)
    torch.manual_seed(0)
    initial = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(initial, tmp_path / "init.pth")
    done = cnnlab(
        "train", "resnet18", "--data", f"folder:{tmp_path / 'pictures'}",
        "--init-weights", tmp_path / "init.pth", "--freeze-until", "layer3",
        "--epochs", "1", "--batch-size", "8", "--lr", "0.1", "--augment", "flip",
        "--out", tmp_path / "run",
        env={"CNNLAB_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reference = torchvision.models.resnet18(num_classes=2).named_parameters()
    trainable = sum(p.numel() for n, p in reference if n.startswith(("layer4.", "fc.")))
    assert f"frozen up to layer3 ({trainable:,} parameters train)" in done.stdout
    state = load_checkpoint(tmp_path / "run")
    trained = state["model"]
    assert trained["fc.weight"].shape == (2, 512)  # a new classifier for the two classes
    for key in ("conv1.weight", "layer1.0.bn1.running_mean", "layer3.1.conv2.weight",
                "layer3.1.bn2.running_var", "layer3.1.bn2.weight"):  # fmt: skip
        assert torch.equal(trained[key], initial[key]), key  # frozen, BN statistics included
    assert not torch.equal(trained["layer4.1.conv2.weight"], initial["layer4.1.conv2.weight"])
    assert not torch.equal(
        trained["layer4.1.bn2.running_mean"], initial["layer4.1.bn2.running_mean"]
    )
    assert state["config"]["freeze_until"] == "layer3"
    (tmp_path / "init.pth").unlink()  # a resumed run needs only its checkpoint
    resumed = cnnlab(
        "resume", tmp_path / "run", "--epochs", "2", env={"CNNLAB_CACHE": str(tmp_path / "cache")}
    )
    assert resumed.returncode == 0, resumed.stderr
    again = load_checkpoint(tmp_path / "run")
    assert again["epoch"] == 2
    assert torch.equal(again["model"]["layer3.1.conv2.weight"], initial["layer3.1.conv2.weight"])
    assert not torch.equal(again["model"]["fc.weight"], trained["fc.weight"])


def test_frozen_modules_stay_in_eval_mode_while_the_rest_trains():
    model = cnnlab.create_model("resnet18")
    frozen = freeze_until(model, "layer1")
    assert frozen == ["conv1", "bn1", "relu", "maxpool", "layer1"]
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert not model.bn1.training and not model.layer1[0].bn2.training
    assert model.layer2[0].bn1.training
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())


def test_freezing_inside_a_container_leaves_its_later_layers_trainable():
    model = cnnlab.create_model("vgg11")
    assert freeze_until(model, "features.3") == [f"features.{i}" for i in range(4)]
    assert model.features[6].weight.requires_grad and not model.features[3].weight.requires_grad


def test_unknown_layer_names_the_nearest():
    with pytest.raises(UnknownNameError, match="Did you mean layer3"):
        freeze_until(cnnlab.create_model("resnet18"), "layer33")
