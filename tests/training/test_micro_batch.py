"""``micro_batch``: a batch taken in pieces gives the whole batch's step, and each piece is a
forward pass of its own (so BatchNorm normalises it alone)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError
from cnnlab.models import create_model
from cnnlab.training import engine, train
from cnnlab.training.config import TrainConfig

LENET = dict(model="lenet5_modern", data="digits", epochs=1, batch_size=128, lr=0.05, amp=False)


def test_pieces_give_the_whole_batch_step(tmp_path, one_thread):
    # LeNet-5 has no BatchNorm, so the pieces' summed gradient is the batch's mean gradient
    whole = train(**LENET, out=str(tmp_path / "whole"))
    pieces = train(**LENET, micro_batch=40, out=str(tmp_path / "pieces"))
    torch.manual_seed(0)  # the engine's seed: the weights both runs started from
    initial = create_model("lenet5_modern", num_classes=10, in_chans=1).state_dict()
    for name, tensor in whole.model.state_dict().items():
        torch.testing.assert_close(pieces.model.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)
    assert not all(torch.equal(initial[k], v) for k, v in whole.model.state_dict().items())
    assert pieces.metrics[0]["train_loss"] == pytest.approx(whole.metrics[0]["train_loss"], 1e-5)


def test_gradient_is_the_mean_over_the_batch(tmp_path, one_thread):
    trainer = engine.Trainer(TrainConfig(**LENET, micro_batch=50, out=str(tmp_path / "run")))
    images, labels = next(iter(trainer.train_loader.epoch(0)))
    sizes = []
    trainer.train_model.register_forward_pre_hook(lambda _, args: sizes.append(len(args[0])))
    trainer.optimizer.zero_grad(set_to_none=True)
    loss, logits = trainer._forward_backward(images, labels)
    assert sizes == [50, 50, 28]  # 128 images in three forward passes
    assert logits.shape == (128, 10)

    reference = create_model("lenet5_modern", num_classes=10, in_chans=1)
    reference.load_state_dict(trainer.model.state_dict())
    expected = F.cross_entropy(reference(images), labels)  # torch on the whole batch at once
    expected.backward()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    theirs = dict(reference.named_parameters())
    for name, ours in trainer.model.named_parameters():
        torch.testing.assert_close(ours.grad, theirs[name].grad, rtol=1e-4, atol=1e-6)


def test_bad_micro_batch_is_one_clear_line(cnnlab, tmp_path):
    with pytest.raises(ConfigError, match="--micro-batch must be >= 1"):
        TrainConfig(micro_batch=0)
    result = cnnlab("train", "lenet5", "--micro-batch", "0", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "--micro-batch must be >= 1 image" in result.stderr
    assert not (tmp_path / "run").exists()


def test_the_start_line_says_the_pieces(cnnlab, tmp_path):
    args = ["train", "lenet5_modern", "--data", "digits", "--epochs", "1", "--batch-size", "128"]
    pieces = cnnlab(*args, "--micro-batch", "40", "--out", tmp_path / "pieces")
    assert pieces.returncode == 0, pieces.stderr
    assert "steps of 128 (forward and backward in pieces of 40)," in pieces.stdout
    whole = cnnlab(*args, "--micro-batch", "128", "--out", tmp_path / "whole")  # one piece
    assert whole.returncode == 0, whole.stderr
    assert "steps of 128," in whole.stdout and "pieces" not in whole.stdout
