"""The weights resolver, offline: torchvision's registry and cache, weights files, shipped weights.

No test downloads anything: files are written by the tests under a temporary ``TORCH_HOME``
or folder, with random weights saved from torchvision's own models, and checked against
torchvision's registry and outputs.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch
import torchvision
from torchvision.models import get_model_weights

import cnnlab
from cnnlab.errors import CheckpointError, CnnlabError
from cnnlab.models import model_entry
from cnnlab.models import weights as weights_module
from cnnlab.models.weights import WeightsError, available_weights, resolve_weights


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME; downloads fail as they do on a machine without network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _random_state(model_fn, **kwargs):
    torch.manual_seed(0)
    return model_fn(weights=None, **kwargs).state_dict()


def test_available_names_are_torchvisions_with_the_default_first():
    enum = get_model_weights("resnet50")
    assert available_weights("resnet50")[0] == enum.DEFAULT.name == "IMAGENET1K_V2"
    assert set(available_weights("resnet50")) == {w.name for w in enum}
    assert model_entry("vgg16").weights == [w.name for w in get_model_weights("vgg16")]
    assert available_weights("resnet56") == []


def test_twenty_five_models_share_torchvisions_weights():
    own = {path.name.split(".")[0] for path in weights_module.OWN_WEIGHTS_DIR.glob("*.json")}
    with_weights = [n for n in cnnlab.list_models() if set(available_weights(n)) - {"cifar10"}]
    torchvision_names = set(torchvision.models.list_models(module=torchvision.models))
    assert len(with_weights) == 25 and set(with_weights) <= torchvision_names
    assert not own & torchvision_names  # cnnlab ships weights only where torchvision has none


def test_metadata_comes_from_torchvisions_registry(torch_home):
    info = resolve_weights("alexnet", "DEFAULT")
    tv = get_model_weights("alexnet").IMAGENET1K_V1
    assert info.name == "IMAGENET1K_V1" and info.source == "torchvision"
    assert info.categories[0] == "tench" and len(info.categories) == 1000
    assert info.metrics["ImageNet-1K"]["acc@1"] == pytest.approx(56.522)
    pre = info.preprocessing
    assert (pre.resize, pre.crop) == (256, (224, 224))
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)
    assert info.file == str(torch_home / "alexnet-owt-7be5be79.pth") and tv.url.endswith(
        "alexnet-owt-7be5be79.pth"
    )
    inception = resolve_weights("inception_v3", "IMAGENET1K_V1").preprocessing
    assert (inception.resize, inception.crop) == (342, (299, 299))


def test_missing_file_names_the_file_and_the_folder(torch_home):
    with pytest.raises(WeightsError) as caught:
        cnnlab.create_model("alexnet", weights="IMAGENET1K_V1")
    message = str(caught.value)
    assert "\n" not in message
    assert "alexnet-owt-7be5be79.pth" in message and str(torch_home) in message
    assert "network is unreachable" in message


def test_cached_file_with_the_wrong_hash_is_refused(torch_home):
    torch_home.mkdir(parents=True)
    cached = torch_home / "alexnet-owt-7be5be79.pth"
    torch.save(_random_state(torchvision.models.alexnet), cached)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert not digest.startswith("7be5be79")
    loads = []
    original = torch.load
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "load", lambda *a, **k: loads.append(a) or original(*a, **k))
        with pytest.raises(WeightsError) as caught:
            cnnlab.create_model("alexnet", weights="DEFAULT")
    message = str(caught.value)
    assert "\n" not in message and "not loaded" in message
    assert f"starts with {digest[:8]}, not 7be5be79" in message
    assert loads == []  # refused before torch.load saw the file


def test_file_with_a_matching_hash_prefix_loads(tmp_path):
    state = _random_state(torchvision.models.alexnet)
    draft = tmp_path / "draft.pth"
    torch.save(state, draft)
    prefix = hashlib.sha256(draft.read_bytes()).hexdigest()[:8]
    named = tmp_path / f"alexnet-{prefix}.pth"
    draft.rename(named)
    model = cnnlab.create_model("alexnet", weights="IMAGENET1K_V1", weights_file=named)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])


def test_weights_file_loads_torchvisions_weights_with_the_names_metadata(tmp_path):
    state = _random_state(torchvision.models.resnet18)
    path = tmp_path / "resnet18-random.pth"
    torch.save(state, path)
    model = cnnlab.create_model("resnet18", weights="IMAGENET1K_V1", weights_file=path).eval()
    reference = torchvision.models.resnet18(weights=None)
    reference.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()(x), rtol=0, atol=0)
    info = model.weights_info
    assert info.categories == tuple(get_model_weights("resnet18").IMAGENET1K_V1.meta["categories"])
    assert info.preprocessing.source == "torchvision's resnet18 IMAGENET1K_V1 transforms"
    assert info.file == str(path)


def test_weights_file_alone_and_a_cnnlab_checkpoint(tmp_path):
    state = _random_state(torchvision.models.squeezenet1_1)
    torch.save({"model": state, "model_name": "squeezenet1_1", "epoch": 3}, tmp_path / "c.pt")
    model = cnnlab.create_model("squeezenet1_1", weights_file=tmp_path / "c.pt")
    assert torch.equal(model.features[0].weight, state["features.0.weight"])
    assert model.weights_info.source == "file" and model.weights_info.categories is None


def test_weights_file_that_does_not_fit_names_the_keys(tmp_path):
    state = _random_state(torchvision.models.alexnet)
    state["classifier.6.weight"] = torch.zeros(10, 4096)
    del state["features.0.bias"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as caught:
        cnnlab.create_model("alexnet", weights_file=tmp_path / "bad.pth")
    message = str(caught.value)
    assert "\n" not in message
    assert "1 missing (features.0.bias)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "classifier.6.weight: file 10×4096, model 1000×4096" in message


def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"x": torch.nn.ReLU()}, path)  # unpickling would build a module object
    with pytest.raises(CheckpointError, match="not loaded"):
        cnnlab.create_model("alexnet", weights_file=path)


def test_googlenet_loads_as_torchvision_does(tmp_path):
    state = _random_state(torchvision.models.googlenet, aux_logits=True, init_weights=True)
    path = tmp_path / "googlenet-random.pth"
    torch.save(state, path)
    model = cnnlab.create_model("googlenet", weights="IMAGENET1K_V1", weights_file=path)
    assert model.transform_input and model.aux1 is None and model.aux2 is None
    reference = torchvision.models.googlenet(
        weights=None, aux_logits=True, transform_input=True, init_weights=False
    )
    reference.load_state_dict(state)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x))
    model.train()
    assert isinstance(model(x), torch.Tensor)  # no auxiliary outputs, as torchvision's
    with pytest.warns(UserWarning, match="not pretrained"):
        with_aux = cnnlab.create_model(
            "googlenet", weights="IMAGENET1K_V1", weights_file=path, aux_logits=True
        )
    assert with_aux.aux1 is not None


def test_inception_v3_switches_on_transform_input(tmp_path):
    state = _random_state(torchvision.models.inception_v3, aux_logits=True, init_weights=False)
    path = tmp_path / "inception-random.pth"
    torch.save(state, path)
    model = cnnlab.create_model("inception_v3", weights="IMAGENET1K_V1", weights_file=path)
    assert model.transform_input and model.AuxLogits is not None
    no_aux = cnnlab.create_model(
        "inception_v3", weights="IMAGENET1K_V1", weights_file=path, aux_logits=False
    )
    assert no_aux.AuxLogits is None and not no_aux.aux_logits


def test_densenet_files_with_old_key_names_load(tmp_path):
    state = _random_state(torchvision.models.densenet121)
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running.*)$")
    old = {pattern.sub(r"\1.\2.\3", k): v for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    torch.save(old, tmp_path / "densenet121-old.pth")
    model = cnnlab.create_model("densenet121", weights_file=tmp_path / "densenet121-old.pth")
    assert torch.equal(model.features.conv0.weight, state["features.conv0.weight"])


def test_other_class_count_keeps_all_but_the_classifier(tmp_path):
    state = _random_state(torchvision.models.resnet18)
    torch.save(state, tmp_path / "r.pth")
    model = cnnlab.create_model(
        "resnet18", weights="IMAGENET1K_V1", weights_file=tmp_path / "r.pth", num_classes=3
    )
    assert model.fc.out_features == 3
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert model.weights_info.categories is None


def test_paper_forms_point_to_the_model_with_weights():
    for paper, twin in [("alexnet_paper", "alexnet"), ("vgg11_lrn", "vgg11")]:
        with pytest.raises(WeightsError, match=f"registered as '{twin}'"):
            cnnlab.create_model(paper, weights="IMAGENET1K_V1")
    with pytest.raises(WeightsError, match="has no pretrained weights"):
        cnnlab.create_model("resnet56", weights="DEFAULT")
    with pytest.raises(CnnlabError, match="IMAGENET1K_V2, IMAGENET1K_V1"):
        cnnlab.create_model("resnet50", weights="IMAGENET1K_V9")


def test_shipped_weights_round_trip_and_their_sha256_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(weights_module, "OWN_WEIGHTS_DIR", tmp_path)
    torch.manual_seed(0)
    trained = cnnlab.create_model("resnet20")
    provenance = {
        "model_kwargs": {"num_classes": 10},
        "input_size": [3, 32, 32],
        "recipe": "resnet2016_cifar",
        "seed": 0,
        "metrics": {"test_top1": 91.0},
        "data": {
            "name": "cifar10",
            "classes": [f"c{i}" for i in range(10)],
            "mean": [0.49, 0.48, 0.45],
            "std": [0.25, 0.24, 0.26],
        },
    }
    weights_path, json_path = weights_module.save_weights(
        "resnet20", "cifar10", trained.state_dict(), provenance, tmp_path, dtype=torch.bfloat16
    )
    record = json.loads(json_path.read_text())
    assert record["sha256"] == hashlib.sha256(weights_path.read_bytes()).hexdigest()
    assert available_weights("resnet20") == ["cifar10"]
    model = cnnlab.create_model("resnet20", weights="DEFAULT")
    assert model.weights_info.name == "cifar10" and model.weights_info.categories[0] == "c0"
    expected = trained.conv1.weight.to(torch.bfloat16).float()
    assert torch.equal(model.conv1.weight, expected) and model.conv1.weight.dtype == torch.float32
    assert model.weights_info.preprocessing.crop == (32, 32)
    weights_path.write_bytes(weights_path.read_bytes()[:-1] + b" ")
    with pytest.raises(WeightsError, match="sha256 does not match"):
        cnnlab.create_model("resnet20", weights="cifar10")


def test_models_table_has_a_weights_column(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from cnnlab.sizing.zoo_table import models_table

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(models_table("resnet5*"))
    text = console.export_text()
    assert "Weights" in text
    row = next(line for line in text.splitlines() if " resnet50 " in line)
    assert "IMAGENET1K_V2, IMAGENET1K_V1" in row
    assert "IMAGENET1K" not in next(line for line in text.splitlines() if " resnet56 " in line)


def test_fine_tuning_googlenet_for_other_classes_keeps_its_quirks(tmp_path):
    state = _random_state(torchvision.models.googlenet, aux_logits=True, init_weights=True)
    torch.save(state, tmp_path / "googlenet-random.pth")
    model = cnnlab.create_model(
        "googlenet", weights="IMAGENET1K_V1", weights_file=tmp_path / "googlenet-random.pth",
        num_classes=5,
    )  # fmt: skip
    assert model.fc.out_features == 5 and model.aux1 is None and model.transform_input
    assert torch.equal(
        model.inception5b.branch1.conv.weight, state["inception5b.branch1.conv.weight"]
    )
    rebuilt = cnnlab.create_model("googlenet", **model.weights_info.model_kwargs)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()  # what a checkpoint needs
