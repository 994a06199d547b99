"""The training configuration: one dataclass, a YAML round trip, and the recipe overlay.

A run is fully described by its ``TrainConfig``: it is written to ``config.yaml`` and into every
checkpoint, so a run can be resumed (or repeated) from its directory alone. Values are resolved
in three layers: the dataclass defaults, then the recipe (a paper's hyperparameters), then the
user's explicit flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from cnnlab.errors import ConfigError, read_problem
from cnnlab.validate import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Items,
    Number,
    Text,
    check,
    check_all,
    check_annotated,
    check_fields,
)

Schedule = Literal[
    "none", "step", "multistep", "plateau", "googlenet", "cosine", "onecycle", "linear"
]
MilestoneUnit = Literal["epoch", "iter"]
OnNonfinite = Literal["stop", "skip"]
# the accepted values, for validation and the CLI's choices
SCHEDULES: tuple[str, ...] = get_args(Schedule)
MILESTONE_UNITS: tuple[str, ...] = get_args(MilestoneUnit)
LOSSES_ON_NONFINITE: tuple[str, ...] = get_args(OnNonfinite)

#: ranges of the fields the checks in ``TrainConfig.validate`` do not cover
FIELD_RANGES = {
    "input_size": Items(POSITIVE_INT, length=3, optional=True, meaning="(C, H, W)"),
    "momentum": Number(low=0, high=1, high_open=True, optional=True),
    "gamma": POSITIVE,
    "step_size": POSITIVE,
    "patience": Number(low=0, integer=True),
    "milestones": Items(NON_NEGATIVE, min_length=0),
    "warmup_until_error": Number(low=0, high=100, optional=True),
    "warmup_factor": Number(low=0, high=1, low_open=True),
    "seed": SEED,
}


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    ``None`` means "not set": the recipe or the model decides (``loss=None`` uses the model's
    ``default_loss``, ``amp=None`` turns bf16 autocast on where the hardware has it,
    ``channels_last=None`` turns it on for convolutional nets). ``amp`` and ``eval_amp`` (the
    precision of the per-epoch test, ``None``: as training) are decided when the run starts and
    written into its config, so a resumed run, and ``cnnlab evaluate`` of it, keep them.

    The speedrun tricks (Jordan 2024), each off by default: ``whitening`` (patch-whitening init
    of the first conv, frozen; its bias trains for ``whitening_bias_epochs``, None: always),
    ``dirac_init``, ``freeze_norm_weights``, ``norm_bias_lr_scale`` (BatchNorm shifts' rate
    multiplier, their per-step decay kept), ``lookahead`` (decay, synchronised every
    ``lookahead_every`` steps, see ``cnnlab.training.lookahead``), the ``linear`` schedule
    (warm-up from ``warmup_start`` over ``warmup_epochs``, then linear to ``lr_end_factor``).
    ``small_crop`` (progressive resizing by cropping: the first ``small_crop_epochs`` epochs
    train on random ``small_crop``-pixel squares of the padded images, so their steps cost
    fewer pixels; objects keep their scale, unlike a resize) is off by default too.
    """

    model: str = "lenet5"
    recipe: str | None = None
    data: str = "digits"
    data_dir: str | None = None
    skip_bad_images: bool = False
    model_kwargs: dict = field(default_factory=dict)
    init_weights: str | None = None  # a weights name or file to start from (fine-tuning)
    freeze_until: str | None = None  # freeze this module and those defined before it
    input_size: list[int] | None = None
    augment: str = "default"
    small_crop: int | None = None  # side of the training crops in the first small_crop_epochs
    small_crop_epochs: int = 0
    epochs: int = 10
    batch_size: int = 128
    micro_batch: int | None = None  # images per forward/backward; the step is still the batch's
    optimizer: str = "momentum"
    lr: float = 0.05
    momentum: float | None = None
    weight_decay: float = 0.0
    decay_norm_and_bias: bool = True
    optimizer_args: dict = field(default_factory=dict)
    schedule: Schedule = "none"
    milestones: list[float] = field(default_factory=list)
    milestone_unit: MilestoneUnit = "epoch"
    gamma: float = 0.1
    step_size: float = 30
    patience: int = 5
    warmup_epochs: float = 0.0
    warmup_until_error: float | None = None
    warmup_factor: float = 0.1
    warmup_start: float = 0.01
    lr_end_factor: float = 0.0
    loss: str | None = None
    label_smoothing: float = 0.0
    clip: float | None = None
    ema: float | None = None
    lookahead: float | None = None
    lookahead_every: int = 5
    whitening: bool = False
    whitening_bias_epochs: int | None = None
    dirac_init: bool = False
    freeze_norm_weights: bool = False
    norm_bias_lr_scale: float = 1.0
    device: str = "auto"
    amp: bool | None = None
    eval_amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    threads: int | None = None
    seed: int = 0
    on_nonfinite: OnNonfinite = "stop"
    log_every: int = 20
    out: str | None = None
    save_trajectory: bool = False  # keep each epoch's weights in RUN/trajectory/

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a ``ConfigError`` naming the first bad value and its accepted range."""
        check_fields("train", self)  # each field's type (Literal: its choices), from its annotation
        check_all("train", dataclasses.asdict(self), FIELD_RANGES)
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (
                self.small_crop is None or self.small_crop >= 1,
                f"--small-crop must be >= 1 pixel, e.g. 28, got {self.small_crop}",
            ),
            (
                self.small_crop_epochs >= 0,
                f"--small-crop-epochs must be >= 0, got {self.small_crop_epochs}",
            ),
            (
                self.micro_batch is None or self.micro_batch >= 1,
                f"--micro-batch must be >= 1 image, e.g. 250, got {self.micro_batch}",
            ),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (
                0 <= self.label_smoothing < 1,
                f"label smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (self.clip is None or self.clip > 0, f"--clip must be > 0, got {self.clip}"),
            (
                self.ema is None or 0 < self.ema < 1,
                f"--ema decay must be in (0, 1), e.g. 0.999, got {self.ema}",
            ),
            (
                self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                f"device must be auto, cpu or cuda, got '{self.device}'",
            ),
            (self.warmup_epochs >= 0, f"warmup epochs must be >= 0, got {self.warmup_epochs}"),
            (
                0 < self.warmup_start <= 1,
                f"--warmup-start must be in (0, 1], e.g. 0.2, got {self.warmup_start}",
            ),
            (
                0 <= self.lr_end_factor <= 1,
                f"--lr-end-factor must be in [0, 1], e.g. 0.07, got {self.lr_end_factor}",
            ),
            (
                self.lookahead is None or 0 < self.lookahead < 1,
                f"--lookahead decay must be in (0, 1), e.g. 0.95, got {self.lookahead}",
            ),
            (
                self.lookahead_every >= 1,
                f"--lookahead-every must be >= 1 step, got {self.lookahead_every}",
            ),
            (
                self.whitening_bias_epochs is None or self.whitening_bias_epochs >= 0,
                f"--whitening-bias-epochs must be >= 0, got {self.whitening_bias_epochs}",
            ),
            (
                self.norm_bias_lr_scale > 0,
                f"--norm-bias-lr-scale must be > 0, e.g. 64, got {self.norm_bias_lr_scale}",
            ),
            (self.log_every >= 1, f"log interval must be >= 1, got {self.log_every}"),
            (
                self.threads is None or self.threads >= 1,
                f"--threads must be >= 1, got {self.threads}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only, so the dict is YAML- and ``weights_only``-safe."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are a ``ConfigError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown training option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def save_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls, path: str | Path) -> TrainConfig:
        try:
            values = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            problem = read_problem(error)  # one line: a YAML error's file excerpt left out
            raise ConfigError(f"cannot read training config {path}: {problem}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} is not a training config (expected a YAML mapping)")
        return cls.from_dict(values)


def resolve_config(model: str, recipe: str | None = None, **overrides: Any) -> TrainConfig:
    """The config for training ``model``: defaults, then the recipe, then explicit overrides.

    ``recipe=None`` picks the paper's recipe for the model on ``data`` when there is one
    (``resnet20`` on ``cifar10``: ``resnet2016_cifar``), and without ``data`` the bundled
    digits with the model's digits recipe (``lenet5``: ``lenet1998``) or the short ``digits``
    one (see ``recipes.default_recipe_for``). Overrides whose value is ``None`` are ignored,
    so CLI flags that were not given leave the recipe's values alone.
    """
    from cnnlab.training.recipes import default_recipe_for, get_recipe

    check("train", "model", model, Text())
    check("train", "recipe", recipe, Text(optional=True))
    check("train", "data", overrides.get("data"), Text(optional=True))
    # types first: the recipe and optimizer lookups below must not see a number for a name
    check_annotated("train", TrainConfig, {k: v for k, v in overrides.items() if v is not None})
    values: dict[str, Any] = {"model": model}
    recipe = recipe or default_recipe_for(model, overrides.get("data"))
    if recipe is not None:
        entry = get_recipe(recipe)
        values.update(entry.settings)
        values["recipe"] = entry.name
        if overrides.get("optimizer") not in (None, entry.settings.get("optimizer")):
            # the recipe's rate, momentum and extra arguments belong to the recipe's optimizer
            for key in ("lr", "momentum", "optimizer_args"):
                values.pop(key, None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    _fill_optimizer_defaults(values)
    return TrainConfig.from_dict(values)


def _fill_optimizer_defaults(values: dict[str, Any]) -> None:
    """Take a rate and weight decay that neither the recipe nor the user set from the optimizer.

    Second-order methods want a step of 1 and AlexNet's rule carries its own decay of 0.0005;
    ``cnnlab optimizers`` shows each optimizer's defaults.
    """
    if "lr" in values and "weight_decay" in values:
        return
    from cnnlab.optim import optimizer_entry

    defaults = optimizer_entry(values.get("optimizer", TrainConfig.optimizer)).defaults
    values.setdefault("lr", defaults.get("lr", TrainConfig.lr))
    values.setdefault("weight_decay", defaults.get("weight_decay", TrainConfig.weight_decay))
