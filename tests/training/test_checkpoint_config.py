"""Checkpoints (atomic, weights_only, clear errors), configs and recipes."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from cnnlab.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.errors import CheckpointError, ConfigError, UnknownNameError
from cnnlab.training import TrainConfig, get_recipe, resolve_config

MINIMAL = {
    "model": {"w": torch.ones(2)},
    "model_name": "lenet5",
    "model_kwargs": {"num_classes": 10, "in_chans": 1},
    "config": {},
    "epoch": 1,
    "step": 5,
}


class NotAllowed:
    """An arbitrary class: weights_only loading must refuse to build it."""


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(MINIMAL, path)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint({**MINIMAL, "bad": lambda: None}, path)
    assert load_checkpoint(path)["step"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_truncated_foreign_and_unsafe_files_give_one_line_errors(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(MINIMAL, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({**MINIMAL, "extra": NotAllowed()}, unsafe)
    cases = [
        (truncated, "truncated or not a torch checkpoint"),
        (text, "truncated or not a torch checkpoint"),
        (foreign, "not a cnnlab checkpoint (it lacks model, model_name"),
        (unsafe, "holds more than tensors and plain values (it names test_checkpoint_config"),
        (tmp_path / "missing.pt", "no checkpoint at"),
    ]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=re.escape(message)) as caught:
            load_checkpoint(path)
        assert "\n" not in str(caught.value)


def test_config_yaml_round_trip_and_validation(tmp_path):
    config = resolve_config("resnet20", "wrn2016_cifar", epochs=3, lr=None)
    config.save_yaml(tmp_path / "config.yaml")
    assert TrainConfig.load_yaml(tmp_path / "config.yaml") == config
    assert config.epochs == 3 and config.lr == 0.1  # flag given / flag not given
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        TrainConfig(lr=-1)
    with pytest.raises(UnknownNameError, match="Did you mean resnet2016_cifar"):
        get_recipe("resnet2016_cifr")
    # another optimizer drops the recipe's momentum instead of failing on it
    assert resolve_config("lenet5", optimizer="adam").momentum is None
