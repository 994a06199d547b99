"""Learning-rate schedules by name, built from ``torch.optim.lr_scheduler``.

Every schedule except ``plateau`` is stepped once per iteration, with epoch-based settings
converted to iterations; this lets ResNet's "÷10 at 32k and 48k iterations" and per-epoch
schedules share one code path, and makes a run resumed mid-epoch land on the same rate.
``plateau`` ("÷10 when the validation error plateaus") is stepped once per epoch with the
test error.
"""

from __future__ import annotations

import math

import torch
from torch.optim import lr_scheduler

from cnnlab.errors import ConfigError
from cnnlab.training.config import TrainConfig

_CHAINABLE = ("none", "step", "multistep", "googlenet")


def per_epoch(config: TrainConfig) -> bool:
    """Whether the schedule steps at the end of each epoch (with the validation metric)."""
    return config.schedule == "plateau"


def create_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau:
    """The scheduler for ``config.schedule``, optionally behind a linear warm-up.

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        config: reads ``schedule``, ``epochs``, ``milestones``/``milestone_unit``, ``gamma``,
            ``step_size``, ``patience``, ``warmup_epochs``.
        steps_per_epoch: optimizer steps per epoch, to convert epochs to iterations.
    """
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.warmup_until_error is not None and config.schedule not in _CHAINABLE:
        raise ConfigError(
            f"--warmup-until-error works with the {', '.join(_CHAINABLE)} schedules, "
            f"not '{config.schedule}'"
        )
    if warmup and config.schedule in ("plateau", "onecycle"):
        raise ConfigError(
            f"--warmup-epochs cannot be combined with '{config.schedule}' "
            "(one-cycle warms up by itself; plateau steps per epoch)"
        )
    if warmup >= total:
        raise ConfigError(
            f"warm-up of {config.warmup_epochs} epochs is not shorter than the {config.epochs}"
            " epochs of training"
        )
    if config.schedule == "linear":  # warms up by itself, from warmup_start
        return lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_linear_factor(
                step, warmup, total, config.warmup_start, config.lr_end_factor
            ),
        )
    main = _main_scheduler(optimizer, config, steps_per_epoch, total - warmup)
    if not warmup:
        return main
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=config.warmup_start, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def warmup_linear_factor(step: int, warmup: int, total: int, start: float, end: float) -> float:
    """The rate factor of the ``linear`` schedule at ``step``: from ``start`` up to 1 in
    ``warmup`` steps, then down to ``end`` at ``total`` (Jordan 2024: 0.2, 23%, 0.07).

    One closed form in a ``LambdaLR``, so the rate at any step (a resumed run's too) is this
    function of the step alone.
    """
    if step < warmup:
        return start + (1 - start) * step / warmup
    return 1 + (end - 1) * min(1.0, (step - warmup) / max(1, total - warmup))


def _main_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int, length: int):
    name = config.schedule
    to_iters = 1 if config.milestone_unit == "iter" else steps_per_epoch
    if name == "none":
        return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if name == "step":
        step = max(1, round(config.step_size * to_iters))
        return lr_scheduler.StepLR(optimizer, step_size=step, gamma=config.gamma)
    if name == "multistep":
        if not config.milestones:
            raise ConfigError("the multistep schedule needs --milestones, e.g. 32000,48000")
        milestones = sorted(round(m * to_iters) for m in config.milestones)
        return lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=config.gamma)
    if name == "googlenet":
        # "decreasing the learning rate by 4% every 8 epochs"
        return lr_scheduler.StepLR(optimizer, step_size=8 * steps_per_epoch, gamma=0.96)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, length))
    if name == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(2, length))
    if name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.gamma, patience=config.patience
        )
    raise ConfigError(f"unknown schedule '{name}'")  # validated in TrainConfig already


class ErrorGatedWarmup:
    """ResNet-110's warm-up: train at ``factor`` x lr until the training error drops below
    ``threshold`` percent, then go back to the full rate.

    torch has no scheduler conditioned on the training error, so this gate scales the
    optimizer's rates directly; the chainable schedulers (step, multistep) read the current
    rate, so they keep working on top of it. Its state is one flag, kept in the checkpoint.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, threshold: float, factor: float):
        self.optimizer = optimizer
        self.threshold = threshold
        self.factor = factor
        self.open = False

    def start(self) -> None:
        """Lower the rates; call once, after the scheduler is built, before the first step."""
        for group in self.optimizer.param_groups:
            group["lr"] *= self.factor

    def update(self, train_error: float) -> bool:
        """Open the gate when ``train_error`` (percent) is below the threshold; True if it
        opened now."""
        if self.open or not math.isfinite(train_error) or train_error >= self.threshold:
            return False
        for group in self.optimizer.param_groups:
            group["lr"] /= self.factor
        self.open = True
        return True
