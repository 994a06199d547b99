"""The learning-rate range test (Smith 2017, "Cyclical learning rates", Sec. 3.3).

Train for a few hundred steps while the learning rate grows exponentially from ``start_lr`` to
``end_lr``, and record the loss at each step. At tiny rates the loss does not move; then it
falls, faster and faster; then the rate becomes too large and the loss shoots up. The loss is
noisy from batch to batch, so it is smoothed with a bias-corrected exponential moving average
(the first values would otherwise be pulled towards zero), and the sweep stops once the
smoothed loss exceeds ``diverge_factor`` times its minimum.

Suggested rate: where the smoothed loss falls fastest per decade of learning rate (the most
negative slope of loss against log10 lr, before the minimum). That is a rate at which training
still makes the most progress; the rate at the minimum itself is already at the edge of
divergence, which is why the other common rule, "minimum / 10", is also reported.

The sweep changes the weights and the optimizer's state; both are copied before and loaded
back after, so the model and optimizer come out exactly as they went in.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from cnnlab.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]
# After its minimum, a smoothed loss this many times higher, or a single step's loss this many
# times higher, is a blow-up a reader sees in the plot even when the sweep did not stop on it.
BLOWUP_SMOOTHED_RISE = 1.5
BLOWUP_STEP_RISE = 4.0


@dataclass
class LrFindResult:
    """What the range test measured.

    Attributes:
        lrs: the learning rate of each step taken.
        losses: the raw training loss of each step.
        smoothed: the bias-corrected exponential moving average of ``losses``.
        suggested_lr: the steepest-descent rate (see the module docstring).
        min_loss_lr: the rate where the smoothed loss is lowest.
        diverged: whether the sweep stopped early because the loss blew up.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float
    min_loss_lr: float
    diverged: bool

    @property
    def min_over_ten_lr(self) -> float:
        """The "minimum / 10" rule of thumb."""
        return self.min_loss_lr / 10

    @property
    def rise(self) -> tuple[float, float]:
        """How far the loss rose after the smoothed minimum: the smoothed loss's highest value
        and the highest single step's loss, each as a multiple of that minimum."""
        lowest = int(np.argmin(self.smoothed))
        floor = self.smoothed[lowest]
        if floor <= 0:
            return 1.0, 1.0
        return float(self.smoothed[lowest:].max() / floor), float(
            np.nanmax(self.losses[lowest:]) / floor
        )

    @property
    def blew_up(self) -> bool:
        """The sweep stopped on a blow-up, or the loss rose after its minimum as far as the plot
        shows a blow-up (``BLOWUP_SMOOTHED_RISE``, ``BLOWUP_STEP_RISE``)."""
        smoothed_rise, step_rise = self.rise
        return (
            self.diverged or smoothed_rise >= BLOWUP_SMOOTHED_RISE or step_rise >= BLOWUP_STEP_RISE
        )

    def describe_end(self) -> str:
        """How the sweep ended, in words that match its plot."""
        last = self.lrs[-1]
        if self.diverged:
            return f"stopped at lr {last:.3g} when the loss blew up"
        smoothed_rise, step_rise = self.rise
        if self.blew_up:
            return (
                f"the loss blew up after lr {self.min_loss_lr:.3g}: by lr {last:.3g} the smoothed "
                f"loss rose to {smoothed_rise:.2f}x its minimum, single steps to {step_rise:.2f}x"
            )
        return (
            f"no blow-up up to lr {last:.3g} (the loss rose at most {step_rise:.2f}x above its "
            "minimum); sweep to a higher --end-lr to see where it does"
        )


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 200,
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
    needs_closure: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LrFindResult:
    """Sweep the learning rate exponentially and record the training loss.

    Args:
        model: the network; its weights, buffers and training mode are restored afterwards.
        optimizer: an optimizer over ``model``'s parameters; its state (momentum buffers,
            learning rates, ...) is restored afterwards. Every parameter group is scaled by
            the same factor, so groups keep their relative rates.
        batches: ``(inputs, targets)`` pairs; cycled if shorter than ``steps``.
        loss_fn: ``loss_fn(outputs, targets)``; a tuple output (auxiliary classifiers) is
            scored on its first element.
        start_lr: first learning rate.
        end_lr: last learning rate (reached only if the loss never blows up).
        steps: number of steps of the sweep.
        smoothing: the moving average's decay; 0 disables smoothing.
        diverge_factor: stop when the smoothed loss exceeds this many times its minimum.
        needs_closure: call ``optimizer.step(closure)`` (second-order optimizers, L-BFGS).
        progress: called with the step number after each step (for a progress bar).

    Raises:
        ConfigError: the rates or the number of steps make no sweep.
    """
    check_finite_rates(start_lr, end_lr)
    if not 0 < start_lr < end_lr or steps < 2 or not 0 <= smoothing < 1:
        raise ConfigError(
            f"need 0 < start_lr < end_lr, steps >= 2 and 0 <= smoothing < 1; got start_lr "
            f"{start_lr:g}, end_lr {end_lr:g}, steps {steps}, smoothing {smoothing:g}"
        )
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    ratios = [lr / base_lrs[0] if base_lrs[0] else 1.0 for lr in base_lrs]
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    losses: list[float] = []
    smoothed: list[float] = []
    average, best, diverged = 0.0, math.inf, False
    model.train()
    sweep = zip(lrs, _cycle(batches), strict=False)
    try:
        for step, (lr, (inputs, targets)) in enumerate(sweep, start=1):
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = float(lr) * ratio
            loss = _step(model, optimizer, loss_fn, inputs, targets, needs_closure)
            losses.append(loss)
            if not math.isfinite(loss):
                diverged = True
                break
            average = smoothing * average + (1 - smoothing) * loss
            smoothed.append(average / (1 - smoothing**step))
            best = min(best, smoothed[-1])
            if progress is not None:
                progress(step)
            if step > 1 and smoothed[-1] > diverge_factor * best:
                diverged = True
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        model.train(was_training)
    if len(smoothed) < 3:
        raise ConfigError(
            f"the loss blew up within {len(losses)} steps, already at lr {lrs[len(losses) - 1]:g};"
            f" start the sweep lower (--start-lr {start_lr / 100:g})"
        )
    taken = lrs[: len(smoothed)]
    smoothed_array = np.asarray(smoothed)
    lowest = int(np.argmin(smoothed_array))
    return LrFindResult(
        lrs=taken,
        losses=np.asarray(losses[: len(smoothed)]),
        smoothed=smoothed_array,
        suggested_lr=_steepest(taken, smoothed_array, lowest),
        min_loss_lr=float(taken[lowest]),
        diverged=diverged,
    )


def check_finite_rates(start_lr: float, end_lr: float) -> None:
    """Refuse an infinite or NaN rate, which would otherwise read as a loss that blew up."""
    for flag, value, example in (("--start-lr", start_lr, "1e-6"), ("--end-lr", end_lr, "10")):
        if not math.isfinite(value):
            raise ConfigError(f"{flag} must be a finite number, got {value}; e.g. {flag} {example}")


def _cycle(batches: Iterable[Batch]) -> Iterator[Batch]:
    """Repeat ``batches`` (a list, or a re-iterable loader) as long as asked."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ConfigError("the data gave no batches; use a larger dataset or smaller batch")


def _step(
    model, optimizer, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, needs_closure: bool
) -> float:
    def closure():
        optimizer.zero_grad(set_to_none=True)
        outputs = model(inputs)
        if isinstance(outputs, (tuple, list)):
            outputs = outputs[0]
        loss = loss_fn(outputs.float(), targets)
        loss.backward()
        return loss

    loss = closure()
    value = float(loss.detach())  # the loss at the rate in force before this update
    if not math.isfinite(value):
        return value
    if needs_closure:
        optimizer.step(closure)
    else:
        optimizer.step()
    return value


def _steepest(lrs: np.ndarray, smoothed: np.ndarray, lowest: int) -> float:
    """The rate of the most negative slope of loss vs log10(lr), before the minimum."""
    if lowest < 2:
        return float(lrs[lowest])
    slopes = np.gradient(smoothed, np.log10(lrs))[:lowest]  # central differences inside
    return float(lrs[int(np.argmin(slopes))])


def lr_find_figure(result: LrFindResult, title: str = "learning-rate range test") -> Figure:
    """Loss against learning rate on a log axis, with the suggested rate and the minimum."""
    figure = Figure(figsize=(8.0, 5.0), dpi=100)
    axis = figure.add_subplot()
    axis.plot(result.lrs, result.losses, color="0.75", linewidth=0.8, label="loss per step")
    axis.plot(result.lrs, result.smoothed, color="C0", linewidth=2.0, label="smoothed loss")
    axis.axvline(
        result.suggested_lr,
        color="C2",
        linestyle="--",
        label=f"suggested lr {result.suggested_lr:.3g} (steepest descent)",
    )
    axis.axvline(
        result.min_over_ten_lr,
        color="C1",
        linestyle=":",
        label=f"minimum / 10: {result.min_over_ten_lr:.3g}",
    )
    lowest = int(np.argmin(result.smoothed))
    axis.plot(
        result.lrs[lowest],
        result.smoothed[lowest],
        "v",
        color="C3",
        label=f"minimum at lr {result.min_loss_lr:.3g}",
    )
    axis.set_xscale("log")
    top = max(result.smoothed[0], result.smoothed[: lowest + 1].max()) * 1.3
    bottom = min(result.smoothed.min(), np.nanmin(result.losses)) * 0.9
    axis.set_ylim(bottom if bottom > 0 else None, top)
    axis.set(
        xlabel="learning rate (log scale)",
        ylabel="training loss (per example)",
        title=title,
    )
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=9)
    figure.tight_layout()
    return figure


def lr_find(
    model_name: str,
    data: str,
    *,
    data_dir: str | None = None,
    optimizer: str = "momentum",
    batch_size: int = 64,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 200,
    device: str = "cpu",
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    **optimizer_hp,
) -> LrFindResult:
    """The range test of a registered model on a dataset; the same as ``cnnlab lr-find``.

    The model is built as ``cnnlab train`` builds it (classes and channels from the dataset),
    fed the training split with the dataset's default augmentation.
    """
    from cnnlab.data import load_dataset
    from cnnlab.data.augment import fitted_input_size
    from cnnlab.models import create_model
    from cnnlab.optim import create_optimizer, optimizer_entry
    from cnnlab.training.losses import create_loss
    from cnnlab.validate import SEED, check
    from cnnlab.viz.inputs import training_loader

    check("lr_find", "seed", seed, SEED)
    check_finite_rates(start_lr, end_lr)  # before the data and the model are loaded
    dataset = load_dataset(data, data_dir=data_dir)
    torch.manual_seed(seed)
    model = create_model(
        model_name, num_classes=dataset.num_classes, in_chans=dataset.input_size[0]
    ).to(device)
    input_size = fitted_input_size(model, dataset.input_size, device)  # as `cnnlab train` fits
    loader = training_loader(dataset, batch_size, input_size, device=device, seed=seed)
    opt = create_optimizer(optimizer, model, lr=start_lr, **optimizer_hp)
    loss_fn = create_loss(model.default_loss)
    epochs = _EpochCycle(loader)
    return lr_range_test(
        model,
        opt,
        epochs,
        loss_fn,
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
        needs_closure=optimizer_entry(optimizer).needs_closure,
        progress=progress,
    )


class _EpochCycle:
    """Iterating gives the next epoch of a loader (fresh shuffling each time round)."""

    def __init__(self, loader):
        self.loader, self.epoch = loader, 0

    def __iter__(self):
        self.epoch += 1
        return iter(self.loader.epoch(self.epoch - 1))
