"""Every registered optimizer trains LeNet-5 on digits through the training engine, as
``cnnlab train lenet5 --optimizer NAME --lr DEFAULT`` would, with no per-optimizer code.

Newton and dense BFGS keep an n x n matrix: for LeNet-5's 60,000 parameters that is 14.4e9
bytes, so they refuse with the memory they would need, as the lectures warn (1e6 parameters:
3.6 TB). Second-order methods run on large batches (512 of digits' 1,437 training images).
"""

import pytest

from cnnlab.errors import ConfigError
from cnnlab.optim import list_optimizers, optimizer_entry
from cnnlab.training import train

DENSE = {"newton", "bfgs"}
# learning rates where the registry default (tuned for other losses) overshoots LeNet-5's RBF
# output, and per-step iteration caps that keep the test short
LR = {"adagrad": 1e-3, "rmsprop": 1e-4}
# muon's SGD part (biases, BatchNorm, the head) defaults to airbench's 1.6, far above what the
# RBF output takes
OPTIONS = {"lbfgs": {"max_iter": 4}, "hessian_free": {"cg_max_iter": 10}, "muon": {"sgd_lr": 0.01}}


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in list_optimizers() if e.name not in DENSE])
def test_optimizer_trains_lenet5_on_digits(name, tmp_path):
    result = train(
        model="lenet5",
        epochs=2,
        batch_size=512,
        optimizer=name,
        lr=LR.get(name, optimizer_entry(name).defaults["lr"]),
        optimizer_args=OPTIONS.get(name, {}),
        out=str(tmp_path / name),
        device="cpu",
    )
    losses = [row["train_loss"] for row in result.metrics]
    assert len(losses) == 2 and all(loss == loss for loss in losses)
    assert losses[1] < losses[0], losses


@pytest.mark.parametrize("name", sorted(DENSE))
def test_dense_second_order_refuses_lenet5_with_the_memory_it_needs(name, tmp_path):
    with pytest.raises(ConfigError, match=r"14,400,000,000 bytes = 13\.4 GiB"):
        train(
            model="lenet5",
            epochs=1,
            batch_size=512,
            optimizer=name,
            lr=1.0,
            out=str(tmp_path / name),
            device="cpu",
        )
