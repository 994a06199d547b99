"""``cnnlab models``: the numbers are torchvision's, and the on-disk cache never goes stale."""

import io
import json

import pytest
import torchvision
from rich.console import Console
from torch import nn

from cnnlab.models import _registry
from cnnlab.models._registry import register_model
from cnnlab.sizing import zoo_table
from cnnlab.sizing.zoo_table import models_table


def rendered(table) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path))
    return tmp_path


def test_numbers_match_torchvision_fresh_and_from_the_cache(cache_dir):
    expected = sum(p.numel() for p in torchvision.models.resnet18().parameters())
    fresh = rendered(models_table("resnet18"))
    cached = json.loads((cache_dir / "models-table.json").read_text())
    assert cached["rows"]["resnet18"][0] == expected
    assert f"{expected:,}" in fresh
    assert rendered(models_table("resnet18")) == fresh


def test_the_cache_is_read_and_ignored_once_the_code_changes(cache_dir, monkeypatch):
    models_table("resnet18")
    path = cache_dir / "models-table.json"
    cached = json.loads(path.read_text())
    cached["rows"]["resnet18"][0] = 1234567
    path.write_text(json.dumps(cached))
    assert "1,234,567" in rendered(models_table("resnet18"))  # the stamp matches: read
    monkeypatch.setattr(zoo_table, "_source_stamp", lambda: "edited sources")
    assert "1,234,567" not in rendered(models_table("resnet18"))
    assert json.loads(path.read_text())["stamp"] == "edited sources"


def test_models_registered_outside_cnnlab_are_sized_every_time(cache_dir, monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    @register_model(input_size=(3, 8, 8), paper="A. User 2026")
    def users_tiny_net(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
        return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.Flatten(), nn.Linear(144, num_classes))

    text = rendered(models_table("users_tiny_net"))
    assert f"{3 * 4 * 9 + 4 + 144 * 10 + 10:,}" in text
    assert not (cache_dir / "models-table.json").exists()
