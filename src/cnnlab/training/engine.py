"""The training loop: one ``Trainer`` behind ``train(config)`` and ``resume(run_dir)``.

Design choices, and why:

* No host synchronisation per step. Loss and top-k counts are summed into one device tensor
  and read once per log interval (the progress bar's text) and once per epoch, so a GPU never
  waits for Python. The progress bar itself only counts steps on the host.
* Non-finite losses are found from those sums: a NaN or inf anywhere in the interval makes the
  sum non-finite. With ``on_nonfinite="stop"`` the run stops at the next read; the weights are
  already poisoned by then, so nothing is saved and the last good checkpoint (previous epoch)
  stays. ``on_nonfinite="skip"`` must decide before each update, so it checks every step's
  loss on the host: it trades one synchronisation per step for never applying a bad update.
* Exact resumption. Batches are a pure function of (seed, epoch, step) (``cnnlab.data``), and a
  checkpoint holds model, optimizer, scheduler, EMA, every RNG state, the epoch, the step
  inside the epoch and the running sums, so a resumed run computes exactly what the
  uninterrupted one would have (bitwise on CPU).
* Ctrl-C and SIGTERM only raise a flag; the loop finishes the current step, saves a
  mid-epoch checkpoint and stops, so the saved state is always consistent.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cnnlab.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from cnnlab.errors import (
    CheckpointError,
    ConfigError,
    RunInUseError,
    TrainingDivergedError,
)
from cnnlab.evaluation import RunningTotals
from cnnlab.machine import bf16_supported, machine_summary, resolve_device
from cnnlab.outputs import check_output_path
from cnnlab.run_metrics import read_metrics
from cnnlab.training import distributed
from cnnlab.training.config import TrainConfig, resolve_config
from cnnlab.training.init import apply_lr_scales, optimizer_groups, prepare_model
from cnnlab.training.lookahead import Lookahead
from cnnlab.training.losses import create_loss
from cnnlab.training.metrics import MetricsLog
from cnnlab.training.rundir import RunDirLock, check_checkpoint_belongs
from cnnlab.training.schedules import ErrorGatedWarmup, create_scheduler, per_epoch

CHECKPOINT_FORMAT = "cnnlab-checkpoint-1"
# Called on the main process after each epoch with the run directory and the epoch's row; the
# engine knows nothing of pictures, so whoever starts a run supplies its curve drawing here.
EpochHook = Callable[[Path, dict[str, float]], None]


class TrainingInterrupted(Exception):
    """Training stopped on Ctrl-C or SIGTERM after saving a checkpoint (exit status 130)."""

    def __init__(self, run_dir: Path, epoch: int, step: int):
        self.run_dir = run_dir
        super().__init__(
            f"saved {run_dir / 'checkpoint.pt'} at epoch {epoch + 1} step {step}; "
            f"resume with `cnnlab resume {run_dir}`"
        )


@dataclass
class RunResult:
    """What a finished run leaves: its directory, its metrics rows and the trained model."""

    run_dir: Path | None
    model: nn.Module
    metrics: list[dict[str, float]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's metrics row."""
        return self.metrics[-1] if self.metrics else {}


def train(
    config: TrainConfig | None = None,
    *,
    console=None,
    on_epoch_end: EpochHook | None = None,
    **options: Any,
) -> RunResult:
    """Train a model; the same as ``cnnlab train``.

    Args:
        config: a complete config; or leave it out and pass ``model=``, ``recipe=`` and any
            ``TrainConfig`` field as keyword options (the recipe fills what is not given).
        console: a ``rich.console.Console`` for the progress bar and per-epoch lines;
            ``None`` trains silently.
        on_epoch_end: called with the run directory and the epoch's metrics row once the row
            and the checkpoint are written (``cnnlab.train`` draws ``curves.png`` with it).

    Returns:
        The run's directory, per-epoch metrics and the trained model (CPU copy not made).

    Raises:
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint was saved first.
        TrainingDivergedError: a non-finite loss with ``on_nonfinite="stop"``.
    """
    if config is None:
        model = options.pop("model", "lenet5")
        config = resolve_config(model, options.pop("recipe", None), **options)
    elif options:
        raise ConfigError("pass either a TrainConfig or keyword options, not both")
    return Trainer(config, console=console, on_epoch_end=on_epoch_end).run()


def resume(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    device: str | None = None,
    data_dir: str | Path | None = None,
    console=None,
    on_epoch_end: EpochHook | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its last checkpoint; the same as ``cnnlab resume``.

    Args:
        run_dir: the run directory (or its ``checkpoint.pt``).
        epochs: train to this many epochs in total instead of the configured number.
        device: run on another device than the one recorded.
        data_dir: where the run's dataset is now, when it moved (another machine); for a
            ``folder:PATH`` dataset, the folder itself (holding train/ and val/). The dataset
            itself must be the same (its name and classes are checked).
        console, on_epoch_end: as for ``train``.
    """
    path = Path(run_dir)
    run_dir = path.parent if path.is_file() else path
    check_checkpoint_belongs(run_dir, load_checkpoint(path))  # a refusal leaves no lock file
    lock = RunDirLock(run_dir)
    if distributed.context_from_env().is_main:
        lock.acquire()
    try:
        state = load_checkpoint(path)  # again, under the lock: a live run may have moved on
        check_checkpoint_belongs(run_dir, state)
        config = TrainConfig.from_dict(dict(state["config"]))
        if epochs is not None:
            config.epochs = epochs
        if device is not None:
            config.device = device
        from cnnlab.data.datasets import absolute_data_spec, is_folder_spec

        if data_dir is not None and is_folder_spec(config.data):
            config.data = absolute_data_spec(config.data, data_dir)  # the folder itself moved
        elif data_dir is not None:
            config.data_dir = str(data_dir)
        config.validate()
        if state["epoch"] >= config.epochs and not state.get("step_in_epoch"):
            raise ConfigError(
                f"the run in {run_dir} already finished its {config.epochs} epochs; "
                f"pass --epochs N (more than {config.epochs}) to train it longer"
            )
        trainer = Trainer(
            config,
            console=console,
            run_dir=run_dir,
            state=state,
            on_epoch_end=on_epoch_end,
            lock=lock,
        )
    except BaseException:
        lock.release()
        raise
    return trainer.run()


def training_loss(
    output: torch.Tensor | tuple[torch.Tensor, ...],
    labels: torch.Tensor,
    loss_fn: nn.Module,
    aux_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of a model's output and its main logits.

    Models with auxiliary classifiers (GoogLeNet, Inception-v3) return ``(logits, aux, ...)``
    in training mode; each auxiliary loss counts ``aux_weight`` times, as in their papers.
    The loss is taken in float32 even when the forward pass ran under bf16 autocast.
    """
    if isinstance(output, (tuple, list)):
        logits, *aux = output
        loss = loss_fn(logits.float(), labels)
        for extra in aux:
            loss = loss + aux_weight * loss_fn(extra.float(), labels)
    else:
        logits = output
        loss = loss_fn(logits.float(), labels)
    return loss, logits


#: images per test batch and process: on a CPU larger batches run slower per image (they fall
#: out of cache: the speedrun net tests 1,327 images/s at 250 against 900 at 2,000, 2 threads)
TEST_BATCH = 256


def pick_device(name: str, context: distributed.DistributedContext) -> torch.device:
    """``auto`` is CUDA when available; under torchrun each process takes its local GPU."""
    name = resolve_device(name)
    if name == "cuda":
        name = f"cuda:{context.local_rank}"
    return torch.device(name)


@contextlib.contextmanager
def _cpu_threads(threads: int | None):
    """Use ``threads`` intra-op CPU threads during the run (``None``: torch's default).

    Small networks on small images gain nothing from splitting each operation over several
    cores and lose a lot when another process is busy on one of them, so recipes for them
    set one thread.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Trainer:
    """One training run: builds everything from the config, runs the epochs, saves state."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        console=None,
        run_dir: Path | None = None,
        state: dict | None = None,
        on_epoch_end: EpochHook | None = None,
        lock: RunDirLock | None = None,
    ):
        self.config = config
        self.on_epoch_end = on_epoch_end
        self.resuming = state is not None
        self.context = distributed.context_from_env()
        self.console = console if self.context.is_main else None
        self.device = pick_device(config.device, self.context)
        distributed.setup(self.context, self.device)
        self._default_name: str | None = None  # the stamped name when no --out was given
        self.run_dir = run_dir if run_dir is not None else self._new_run_dir()
        if not self.resuming:  # a relative folder:PATH must still be found from elsewhere
            from cnnlab.data.datasets import absolute_data_spec

            config.data = absolute_data_spec(config.data)
        self.lock = lock or RunDirLock(self.run_dir)
        self._seed_everything()
        self._build(state)

    # ----------------------------------------------------------------------------- setup
    def _new_run_dir(self) -> Path:
        config = self.config
        if config.out:
            run_dir = check_output_path(config.out, directory=True)
            problem = self._holds_run(run_dir)
            if distributed.any_process(problem is not None and self.context.is_main, self.context):
                raise ConfigError(problem or f"run directory {run_dir} already holds a run")
            return run_dir
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        data = config.data.replace(":", "-").replace("/", "_")
        run_dir = Path("runs") / f"{config.model}-{data}-{stamp}"
        self._default_name = run_dir.name  # claimed under the lock in ``_own_run_dir``
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = run_dir.with_name(f"{config.model}-{data}-{stamp}-{suffix}")
        return run_dir

    @staticmethod
    def _holds_run(run_dir: Path) -> str | None:
        if (run_dir / "checkpoint.pt").exists() or (run_dir / "config.yaml").exists():
            return (
                f"run directory {run_dir} already holds a run; continue it with "
                f"`cnnlab resume {run_dir}` or choose another --out"
            )
        return None

    def _seed_everything(self) -> None:
        torch.manual_seed(self.config.seed)
        np.random.seed(self.config.seed % 2**32)
        random.seed(self.config.seed)

    def _build(self, state: dict | None) -> None:
        from cnnlab.data import load_dataset

        self.dataset = load_dataset(
            self.config.data,
            data_dir=self.config.data_dir,
            skip_bad_images=self.config.skip_bad_images,
        )
        self.model = self._build_model(state)
        self._build_loaders()
        self._build_optimisation()
        self._wrap_for_training()

        self.start_epoch, self.start_step, self.global_step = 0, 0, 0
        self.partial: dict | None = None
        self.best_top1 = -math.inf
        if state is not None:
            self._load_state(state)

    def _wrap_for_training(self) -> None:
        """The model as the steps call it: DDP over the processes, then compiled if asked.
        Built again when a parameter stops training, since DDP fixes its buckets up front."""
        self.train_model = self.model
        self.ddp: nn.parallel.DistributedDataParallel | None = None
        if self.context.enabled:
            device_ids = [self.device] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
            self.train_model = self.ddp
        if self.config.compile:
            self.train_model = torch.compile(self.train_model)

    def _freeze_whitening_bias_if_due(self, epoch: int) -> None:
        """Stop training the whitening bias after its ``whitening_bias_epochs``. Frozen (not
        merely left without a gradient), the first conv's output needs no gradient, so the
        backward pass skips the second conv's input gradient and the first conv altogether."""
        bias_epochs = self.config.whitening_bias_epochs
        bias = None if self.whitened is None else self.whitened.bias
        if bias is None or bias_epochs is None or epoch < bias_epochs or not bias.requires_grad:
            return
        bias.requires_grad_(False)
        bias.grad = None
        if self.ddp is not None or self.config.compile:
            self._wrap_for_training()

    def _training_images(self, count: int) -> torch.Tensor:
        """``count`` training images drawn by the seed (folders list them class by class),
        normalised, for data-dependent initialisation."""
        images = getattr(self.dataset.train, "images", None)
        if images is None:
            raise ConfigError(
                "--whitening needs an in-memory dataset (CIFAR, MNIST, ...), "
                f"not {self.config.data}"
            )
        generator = torch.Generator().manual_seed(self.config.seed)
        chosen = torch.randperm(len(images), generator=generator)[:count]
        return self.train_loader.normalize(images[chosen].to(self.device))

    def _build_model(self, state: dict | None = None) -> nn.Module:
        """The model on its device and memory format; refuses inputs it cannot take.

        ``--init-weights`` are loaded only when a run starts: a resumed run's checkpoint holds
        the weights and the options they need, so the initial file may be gone by then.
        """
        from cnnlab.models import create_model
        from cnnlab.models.transfer import freeze_until, init_weights_options

        config = self.config
        self.model_kwargs = {
            "num_classes": self.dataset.num_classes,
            "in_chans": self.dataset.input_size[0],
            **config.model_kwargs,
        }
        initial = init_weights_options(config.init_weights) if state is None else {}
        if state is not None and config.init_weights:
            self.model_kwargs = dict(state["model_kwargs"])
        model = create_model(config.model, **self.model_kwargs, **initial)
        if initial:  # e.g. GoogLeNet's transform_input: a checkpoint rebuilds it
            self.model_kwargs = {**model.weights_info.model_kwargs, **self.model_kwargs}
        if config.freeze_until:
            freeze_until(model, config.freeze_until)
        self.input_size = tuple(config.input_size or self.dataset.input_size)
        conv_net = any(isinstance(m, nn.Conv2d) for m in model.modules())
        self.channels_last = conv_net if config.channels_last is None else config.channels_last
        # decided once, at the run's start, and recorded: a resumed run keeps its precision
        # even on a machine that would decide otherwise
        self.amp = bf16_supported(self.device) if config.amp is None else config.amp
        config.amp = self.amp
        config.eval_amp = self.amp if config.eval_amp is None else config.eval_amp
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self._check_input_fits(model)
        return model

    def _build_loaders(self) -> None:
        """This process's share of each batch: the training and the test loader."""
        from cnnlab.data import make_loader

        config, context = self.config, self.context
        if config.batch_size % context.world_size:
            raise ConfigError(
                f"batch size {config.batch_size} does not divide over {context.world_size} "
                "processes; the batch size is global, pick a multiple of the process count"
            )
        loader_options = dict(
            device=self.device,
            seed=config.seed,
            rank=context.rank,
            world_size=context.world_size,
            channels_last=self.channels_last,
            input_size=self.input_size,
        )
        per_rank = config.batch_size // context.world_size
        self.train_loader = make_loader(
            "train",
            self.dataset,
            batch_size=per_rank,
            train=True,
            augment=self._augmentation(),
            small_crop=self._small_crop(),
            small_crop_epochs=config.small_crop_epochs,
            **loader_options,
        )
        self.test_loader = make_loader(
            "test",
            self.dataset,
            batch_size=TEST_BATCH,
            train=False,
            augment="none",
            **loader_options,
        )
        self.steps_per_epoch = len(self.train_loader)

    def _small_crop(self) -> int | None:
        """The side of the early epochs' crops (``--small-crop``), checked against the data
        and the model.

        A recipe's small crop that the data or the model cannot take (an image folder, images
        fitted to the model's size or smaller than the crop, a model too deep for it) is left
        out, said once; one given on the command line stops the run with the reason.
        """
        from cnnlab.data.augment import input_error
        from cnnlab.data.loaders import small_crop_problem
        from cnnlab.training.recipes import get_recipe

        config = self.config
        crop = config.small_crop
        if crop is None or not config.small_crop_epochs:
            return None
        error = None
        if small_crop_problem(self.dataset.train, crop, self.input_size) is None:
            size = (self.input_size[0], crop, crop)
            error = input_error(self.model, size, self.device, self.channels_last)
            if error is None:
                epochs = config.small_crop_epochs
                first = "epoch 1 trains" if epochs == 1 else f"epochs 1 to {epochs} train"
                self._say(f"{first} on random {crop}x{crop} crops, the rest on whole images")
                return crop
        recipe = get_recipe(config.recipe).settings.get("small_crop") if config.recipe else None
        if crop == recipe:
            self._say(
                f"recipe {config.recipe}'s {crop}x{crop} crops of the first epochs do not fit "
                f"{config.model} on {config.data}; every epoch trains on whole images"
            )
            config.small_crop = None
            return None
        if error is not None:
            raise ConfigError(
                f"model '{config.model}' cannot take --small-crop {crop} crops "
                f"({str(error).splitlines()[0][:120]}); pick a larger --small-crop"
            ) from error
        return crop  # the loader says what the data lack

    def _augmentation(self) -> str:
        """The run's augmentation; a recipe's folder-only one (ImageNet's scale jitter) on a
        folder small enough to be held in memory becomes the dataset's default, said once."""
        from cnnlab.data import FolderImages
        from cnnlab.data.augment import TENSOR_AUGMENTATIONS
        from cnnlab.data.folder_transforms import FOLDER_AUGMENTATIONS
        from cnnlab.training.recipes import get_recipe

        config, augment = self.config, self.config.augment
        in_memory = not isinstance(self.dataset.train, FolderImages)
        folder_only = augment in set(FOLDER_AUGMENTATIONS) - set(TENSOR_AUGMENTATIONS)
        recipe = get_recipe(config.recipe).settings.get("augment") if config.recipe else None
        if not (in_memory and folder_only and augment == recipe):
            return augment
        self._say(
            f"recipe {config.recipe}'s augmentation '{augment}' needs images read from a folder "
            f"as they train; {config.data}'s small images are held in memory, so they get "
            f"its default ('{self.dataset.augment}'); --augment picks another"
        )
        config.augment = "default"
        return "default"

    def _build_optimisation(self) -> None:
        """Loss, optimizer, learning-rate schedule, error-gated warm-up and EMA of the weights."""
        from cnnlab.optim import create_optimizer, optimizer_entry

        config = self.config
        self.whitened = prepare_model(self.model, config, self._training_images)
        hyperparameters = {"lr": config.lr, **config.optimizer_args}
        if config.momentum is not None:
            hyperparameters["momentum"] = config.momentum
        self.optimizer = create_optimizer(
            config.optimizer,
            optimizer_groups(self.model, config),
            weight_decay=config.weight_decay,
            decay_norm_and_bias=config.decay_norm_and_bias,
            **hyperparameters,
        )
        apply_lr_scales(self.optimizer)
        self.needs_closure = optimizer_entry(config.optimizer).needs_closure
        self.scheduler = create_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.gate = None
        if config.warmup_until_error is not None:
            self.gate = ErrorGatedWarmup(
                self.optimizer, config.warmup_until_error, config.warmup_factor
            )
            self.gate.start()
        self.ema = None
        if config.ema is not None:
            self.ema = AveragedModel(
                self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True
            )
        self.lookahead = None
        if config.lookahead is not None:
            self.lookahead = Lookahead(
                self.model,
                config.epochs * self.steps_per_epoch,
                decay=config.lookahead,
                every=config.lookahead_every,
            )
        self.loss_fn = create_loss(
            config.loss or self.model.default_loss,
            label_smoothing=config.label_smoothing,
        )
        self.aux_weight = self.model.aux_loss_weight

    def _check_input_fits(self, model: nn.Module) -> None:
        """Fit the data to a model that cannot take its size, and say what was done and why.

        With no ``--input-size``, a model that cannot take the data's size gets the data at
        its own ``default_input_size``: padded or resized by ``data.augment.fit_method``'s
        rule. The size is written into the config, so evaluation and resuming fit alike.
        """
        from cnnlab.data.augment import describe_fit, fitted_input_size, input_error

        data_size = tuple(self.dataset.input_size)
        if self.config.input_size is None:
            fitted = fitted_input_size(model, data_size, self.device, self.channels_last)
            if fitted != data_size:
                self.input_size = fitted
                self.config.input_size = list(fitted)
        error = input_error(model, self.input_size, self.device, self.channels_last)
        if error is not None:
            raise ConfigError(
                f"model '{self.config.model}' cannot take {self.config.data}'s "
                f"{'x'.join(map(str, self.input_size))} input ({str(error).splitlines()[0][:120]});"
                " pass --input-size C H W that the model accepts"
            ) from error
        if self.input_size[1:] != data_size[1:]:
            self._say(f"{self.config.data}: {describe_fit(data_size, self.input_size)}")

    def _load_state(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise CheckpointError(
                "this checkpoint holds weights only (no optimizer state) and cannot be resumed; "
                "start a new run"
            )
        saved = state.get("model_kwargs") or {}
        differences = [
            f"{key} {saved[key]} in the checkpoint, {value} from {self.config.data} now"
            for key, value in self.model_kwargs.items()
            if key in saved and saved[key] != value
        ]
        if differences:  # e.g. an image folder that gained a class since the run began
            raise CheckpointError(
                f"the checkpoint does not fit the model this run builds now "
                f"({'; '.join(differences)}); nothing was changed: restore the data the run "
                "was trained on, or start a new run"
            )
        from cnnlab.checkpoint import DAMAGED
        from cnnlab.models.weights import load_state

        where = f"the checkpoint in {self.run_dir}"
        load_state(self.model, state["model"], where, label=self.config.model, remedy=DAMAGED)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        if self.lookahead is not None and state.get("lookahead"):
            self.lookahead.load_state_dict(state["lookahead"])
        if self.gate is not None:
            self.gate.open = bool(state.get("warmup_gate_open", False))
        set_rng_states(state["rng"])
        self.start_epoch = int(state["epoch"])
        self.start_step = int(state.get("step_in_epoch", 0))
        self.global_step = int(state["step"])
        self.partial = state.get("partial")
        self.best_top1 = float(state.get("best_test_top1", -math.inf))

    # ------------------------------------------------------------------------------- run
    def run(self) -> RunResult:
        """Train from ``start_epoch`` to ``config.epochs``; returns the run's result."""
        config = self.config
        self.log = None
        if self.context.is_main:
            self._own_run_dir()
            try:
                config.save_yaml(self.run_dir / "config.yaml")
                self.log = MetricsLog(self.run_dir, ema=self.ema is not None)
                self.log.truncate_after(self.start_epoch)
                self._say_start()
            except BaseException:
                self.lock.release()  # an in-process caller may train into the directory again
                raise
        self._stop_requested = False
        with self._signals_caught(), _cpu_threads(self.config.threads):
            try:
                for epoch in range(self.start_epoch, config.epochs):
                    self._train_epoch(epoch)
                    if self._stop():
                        raise TrainingInterrupted(self.run_dir, epoch + 1, 0)
            finally:
                if self.log is not None:
                    self.log.close()
                self.lock.release()
                if self.context.enabled:
                    distributed.teardown()
        metrics = read_metrics(self.run_dir / "metrics.csv") if self.context.is_main else []
        self._say(f"run saved in [bold]{self.run_dir}[/]")
        return RunResult(self.run_dir, self.model, metrics)

    def _own_run_dir(self) -> None:
        """Lock the run directory (main process only) before writing anything in it; a new
        run checks again, under the lock, that no other run was started there meanwhile."""
        if self._default_name:  # two runs started in the same second: the later one moves on
            suffix = 1
            while True:
                try:
                    self.lock.acquire()
                except RunInUseError:
                    problem = "in use"
                else:
                    problem = self._holds_run(self.run_dir)
                if problem is None:
                    return
                self.lock.release()
                suffix += 1
                self.run_dir = self.run_dir.with_name(f"{self._default_name}-{suffix}")
                self.lock = RunDirLock(self.run_dir)
        if not self.lock.held:
            self.lock.acquire()
        problem = None if self.resuming else self._holds_run(self.run_dir)
        if problem is not None:
            self.lock.release()
            raise ConfigError(problem)

    def _say_start(self) -> None:
        if self.console is None:
            return
        c = self.config
        recipe = f" (recipe {c.recipe})" if c.recipe else ""
        resumed = ""
        if self.start_epoch or self.start_step:
            resumed = f", resuming at epoch {self.start_epoch + 1} step {self.start_step}"
        params = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        if c.init_weights:
            recipe += f", from {c.init_weights}"
        if c.freeze_until:
            recipe += f", frozen up to {c.freeze_until} ({trainable:,} parameters train)"
        pieces = ""
        if c.micro_batch and c.micro_batch < self.train_loader.batch_size:  # this process's
            pieces = f" (forward and backward in pieces of {c.micro_batch})"
        self._say(
            f"training [bold]{c.model}[/] ({params:,} parameters) on [bold]{c.data}[/]{recipe}: "
            f"{c.epochs} epochs x {self.steps_per_epoch} steps of {c.batch_size}{pieces}, "
            f"{c.optimizer} lr {c.lr:g}, schedule {c.schedule}, device {self.device}"
            f"{', bf16' if self.amp else ''}{', channels_last' if self.channels_last else ''}"
            f", tested in {'bf16' if c.eval_amp else 'fp32'}"
            f"{f', {self.context.world_size} processes' if self.context.enabled else ''}"
            f"{resumed}"
        )
        skipped = self.dataset.skipped
        if skipped:
            self._say(
                f"skipped {len(skipped)} unreadable image file(s) (--skip-bad-images), e.g. "
                f"{skipped[0]}"
            )
        self._say(f"run directory [bold]{self.run_dir}[/]")

    def _say(self, text: str) -> None:
        """Print a line on the console, if any, as written: no colouring of numbers, no line
        breaks at the terminal's width (a log file keeps one line per message)."""
        if self.console is not None:
            self.console.print(text, highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def _signals_caught(self):
        """Turn the first Ctrl-C / SIGTERM into a "stop after this step" flag (main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            if self._stop_requested:  # a second Ctrl-C aborts at once
                raise KeyboardInterrupt
            self._stop_requested = True

        caught = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, request_stop) for sig in caught}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self) -> bool:
        """Whether to stop now; every process agrees (a collective under torchrun)."""
        return distributed.any_process(self._stop_requested, self.context)

    # ------------------------------------------------------------------------------ epoch
    def _autocast(self, enabled: bool | None = None):
        """bf16 autocast when ``enabled`` (default: the training precision, ``amp``)."""
        enabled = self.amp if enabled is None else enabled
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _train_epoch(self, epoch: int) -> None:
        config = self.config
        start_step = self.start_step if epoch == self.start_epoch else 0
        totals = RunningTotals(self.device)
        elapsed, self.skipped_steps = 0.0, 0
        if start_step and self.partial is not None:
            # the sums of every process so far, so one process carries them, whatever the
            # number of processes now (the epoch's end adds up all processes' sums)
            if self.context.is_main:
                totals = RunningTotals(self.device, saved=self.partial["sums"])
            elapsed = float(self.partial["elapsed"])
            self.skipped_steps = int(self.partial.get("skipped_steps", 0))
        self._freeze_whitening_bias_if_due(epoch)
        self.model.train()
        began = time.perf_counter()
        progress = self._progress(epoch)
        with progress or contextlib.nullcontext():
            task = None
            if progress is not None:
                task = progress.add_task("", total=self.steps_per_epoch, completed=start_step)
            for step, (images, labels) in enumerate(
                self.train_loader.epoch(epoch, start_step), start=start_step + 1
            ):
                self._train_step(images, labels, totals)
                self.global_step += 1
                if not per_epoch(config):
                    self.scheduler.step()
                if task is not None:
                    progress.advance(task)
                if step % config.log_every == 0:
                    mean_loss = self._check_finite(totals, epoch, step)
                    if task is not None:
                        progress.update(task, description=self._progress_text(epoch, mean_loss))
                    stop = self._stop()
                else:  # between log steps only a single process may stop (no collective)
                    stop = not self.context.enabled and self._stop_requested
                if stop:  # under DDP every process is here: the saved sums are all of theirs
                    distributed.all_reduce_sum(totals.sums, self.context)
                    self._save(epoch, step, totals, elapsed + time.perf_counter() - began)
                    raise TrainingInterrupted(self.run_dir, epoch, step)
        if self.lookahead is not None and epoch + 1 == config.epochs:
            self.lookahead.finish()
        train_time = elapsed + time.perf_counter() - began
        self._end_epoch(epoch, totals, train_time)

    def _progress(self, epoch: int):
        if self.console is None or not self.console.is_terminal:
            return None  # a log file gets the per-epoch lines only
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(
            TextColumn(f"epoch {epoch + 1}/{self.config.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )

    @staticmethod
    def _progress_text(epoch: int, mean_loss: float) -> str:
        return f"loss {mean_loss:.4f}"

    def _forward_loss(self, images: torch.Tensor, labels: torch.Tensor):
        """The training loss and the main logits of one batch (forward under autocast)."""
        with self._autocast():
            output = self.train_model(images)
        return training_loss(output, labels, self.loss_fn, self.aux_weight)

    def _forward_backward(self, images: torch.Tensor, labels: torch.Tensor, skip: bool = False):
        """The batch's loss and logits, after its gradients: ``config.micro_batch`` images at a
        time, each piece's loss weighted by its share of the batch, so the summed gradient is
        the whole batch's (BatchNorm sees each piece alone: ghost batch norm). Under DDP only
        the last piece's backward averages the gradients over the processes. With ``skip``, a
        non-finite piece's loss is returned before its backward (the step is then skipped).
        The loss keeps its graph for the closure optimizers' curvature."""
        size = self.config.micro_batch or len(images)
        pieces = list(zip(images.split(size), labels.split(size), strict=True))
        total: torch.Tensor | float = 0.0
        outputs = []
        for index, (piece, piece_labels) in enumerate(pieces):
            last = index == len(pieces) - 1
            with self.ddp.no_sync() if self.ddp and not last else contextlib.nullcontext():
                loss, logits = self._forward_loss(piece, piece_labels)
                if skip and not torch.isfinite(loss):
                    return loss, logits
                share = loss * (len(piece) / len(images))
                share.backward()
            total = total + share
            outputs.append(logits.detach())
        return total, torch.cat(outputs)

    def _after_backward(self) -> None:
        """Clip the gradients to ``config.clip`` in total norm."""
        if self.config.clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)

    def _train_step(
        self, images: torch.Tensor, labels: torch.Tensor, totals: RunningTotals
    ) -> None:
        if self.needs_closure:
            first: dict[str, torch.Tensor] = {}

            def closure():
                self.optimizer.zero_grad(set_to_none=True)
                loss, logits = self._forward_backward(images, labels)
                first.setdefault("loss", loss.detach())
                first.setdefault("logits", logits)
                self._after_backward()
                return loss

            self.optimizer.step(closure)
            loss, logits = first["loss"], first["logits"]
        else:
            self.optimizer.zero_grad(set_to_none=True)
            skip = self.config.on_nonfinite == "skip"
            loss, logits = self._forward_backward(images, labels, skip)
            if skip and not torch.isfinite(loss):  # one host sync a step: the price of deciding
                self.optimizer.zero_grad(set_to_none=True)  # a micro-batch's earlier pieces
                self.skipped_steps += 1
                return
            self._after_backward()
            self.optimizer.step()
            loss = loss.detach()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.lookahead is not None:
            self.lookahead.step(self.global_step + 1)
        totals.add(logits, labels, loss)

    def _check_finite(self, totals: RunningTotals, epoch: int, step: int) -> float:
        """Read the running loss (one sync) and stop on a non-finite one (``stop`` mode)."""
        mean_loss = totals.mean_loss()
        if not math.isfinite(mean_loss) and self.config.on_nonfinite == "stop":
            checkpoint = self.run_dir / "checkpoint.pt"
            kept = (
                f"the last good checkpoint {checkpoint} is kept"
                if checkpoint.exists()
                else "no checkpoint was written (it diverged in the first epoch)"
            )
            raise TrainingDivergedError(
                f"training loss became {mean_loss} at epoch {epoch + 1} step {step}, so the run "
                f"stopped; {kept}. Lower the learning rate (--lr {self.config.lr / 10:g}) or clip "
                "gradients (--clip 1.0), or pass --on-nonfinite skip to skip such steps"
            )
        return mean_loss

    @torch.no_grad()
    def _evaluate(self, model: nn.Module) -> tuple[float, float, float]:
        """Test loss, top-1 and top-5 accuracy (%) of ``model`` (summed over processes)."""
        was_training = model.training
        model.eval()
        totals = RunningTotals(self.device)
        for images, labels in self.test_loader.epoch(0):
            with self._autocast(self.config.eval_amp):
                logits = model(images)
            logits = logits.float()
            totals.add(logits, labels, self.loss_fn(logits, labels))
        model.train(was_training)
        distributed.all_reduce_sum(totals.sums, self.context)
        return totals.read()

    def _end_epoch(self, epoch: int, totals: RunningTotals, train_time: float) -> None:
        eval_began = time.perf_counter()
        distributed.all_reduce_sum(totals.sums, self.context)
        self._check_finite(totals, epoch, self.steps_per_epoch)
        trained = totals.read()
        test = self._evaluate(self.model)
        # an epoch whose every step was skipped measured nothing: NaN, not a loss of 0
        train_loss, train_top1, train_top5 = (
            (trained.loss, trained.top1, trained.top5) if trained.count else (math.nan,) * 3
        )
        row = {
            "epoch": epoch + 1,
            "step": self.global_step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": train_loss,
            "train_top1": train_top1,
            "train_top5": train_top5,
            "test_loss": test.loss,
            "test_top1": test.top1,
            "test_top5": test.top5,
            "images_per_s": trained.count / max(train_time, 1e-9),
            "skipped_steps": self.skipped_steps,
            "eval_precision": "bf16" if self.config.eval_amp else "fp32",
            "machine": machine_summary(self.device),
        }
        if self.ema is not None:
            row["ema_test_top1"] = self._evaluate(self.ema.module).top1
        if per_epoch(self.config):
            self.scheduler.step(100 - test.top1)
        if self.gate is not None and self.gate.update(100 - row["train_top1"]):
            self._say("training error below the warm-up threshold: full rate now")
        row["epoch_time"] = train_time + time.perf_counter() - eval_began
        self.start_step, self.partial = 0, None
        if not self.context.is_main:
            return
        self.log.append(row)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.run_dir, row)
        is_best = test.top1 > self.best_top1
        self.best_top1 = max(self.best_top1, test.top1)
        self._save(epoch + 1, 0, None, 0.0)
        if is_best:
            save_checkpoint(self._weights_state(epoch + 1), self.run_dir / "best.pt")
        if self.config.save_trajectory:  # the path `cnnlab lab` projects on the landscape
            snapshot = self.run_dir / "trajectory" / f"epoch-{epoch + 1:04d}.pt"
            save_checkpoint(self._weights_state(epoch + 1), snapshot)
        self._say_epoch(row)

    def _say_epoch(self, row: dict[str, float]) -> None:
        if self.console is None:
            return
        ema = f"  ema {row['ema_test_top1']:.2f}%" if "ema_test_top1" in row else ""
        skipped = ""
        if row["skipped_steps"]:
            skipped = f"  {row['skipped_steps']} non-finite step(s) skipped"
        unreadable = getattr(self.train_loader, "skipped", ())  # image folders read per epoch
        if unreadable:
            skipped += f"  {len(unreadable)} unreadable image(s) skipped so far"
        self._say(
            f"epoch {int(row['epoch']):>3}/{self.config.epochs}  "
            f"loss {row['train_loss']:.4f}  train {row['train_top1']:.2f}%  "
            f"test {row['test_top1']:.2f}% (top-5 {row['test_top5']:.2f}%){ema}  "
            f"lr {row['lr']:.3g}  {row['images_per_s']:,.0f} img/s  {row['epoch_time']:.1f}s"
            f"{skipped}"
        )

    # ------------------------------------------------------------------------ checkpoints
    def _weights_state(self, epoch: int) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "model_name": self.config.model,
            "model_kwargs": dict(self.model_kwargs),
            "config": self.config.to_dict(),
            "epoch": epoch,
            "step": self.global_step,
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def _save(
        self, epoch: int, step_in_epoch: int, totals: RunningTotals | None, elapsed: float
    ) -> None:
        """Save the full training state; ``epoch`` counts finished epochs."""
        if not self.context.is_main:
            return
        state = self._weights_state(epoch)
        state.update(
            step_in_epoch=step_in_epoch,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            warmup_gate_open=bool(self.gate is not None and self.gate.open),
            rng=rng_states(),
            partial=None
            if totals is None
            else {
                "sums": totals.sums.cpu(),
                "elapsed": elapsed,
                "skipped_steps": self.skipped_steps,
            },
            best_test_top1=self.best_top1,
            lookahead=self.lookahead.state_dict() if self.lookahead is not None else None,
        )
        save_checkpoint(state, self.run_dir / "checkpoint.pt")
