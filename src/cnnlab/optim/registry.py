"""One registry for every optimizer of the lectures: ``create_optimizer(name, params, **hp)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.errors import ConfigError, unknown_name
from cnnlab.validate import (
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Domain,
    Flag,
    Items,
    Number,
    OneOf,
    Text,
    check,
    check_all,
)

_NAME = Text()
OptimizerFactory = Callable[..., torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerEntry:
    """A registered optimizer and what ``cnnlab optimizers`` shows about it.

    ``state`` is the optimizer state kept per parameter, in copies of the parameter
    (momentum: 1, Adam: 2, Newton: a dense n x n Hessian).
    """

    name: str
    factory: OptimizerFactory
    order: int
    state: str
    defaults: dict = field(default_factory=dict)
    source: str = ""
    summary: str = ""
    needs_closure: bool = False
    domains: dict = field(default_factory=dict)


_REGISTRY: dict[str, OptimizerEntry] = {}

#: what each hyperparameter means, whichever optimizer takes it: its domain is checked once,
#: when the optimizer is created (momentum 1.5 would diverge, cg_max_iter=0 never move, ...)
HYPERPARAMETER_DOMAINS: dict[str, Domain] = {
    "lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "momentum": FRACTION,
    "dampening": Number(low=0, high=1),
    "alpha": FRACTION,
    "rho": FRACTION,
    "betas": Items(FRACTION, length=2),
    "eps": POSITIVE,
    "damping": NON_NEGATIVE,
    "max_memory": POSITIVE,
    "force": Flag(),
    "c1": Number(low=0, high=1, low_open=True, high_open=True),
    "c2": Number(low=0, high=1, low_open=True, high_open=True),
    "tolerance_grad": NON_NEGATIVE,
    "tolerance_change": NON_NEGATIVE,
    "restart_every": Number(low=0, integer=True),
    "cg_max_iter": POSITIVE_INT,
    "cg_decay": Number(low=0, high=1),
    "history_size": POSITIVE_INT,
    "max_iter": POSITIVE_INT,
    "line_search_fn": OneOf((None, "strong_wolfe")),
    "beta": OneOf(("fr", "pr+")),
    "curvature": OneOf(("gauss_newton", "hessian")),
    "sgd_lr": POSITIVE,
    "sgd_momentum": FRACTION,
    "ns_steps": POSITIVE_INT,
    "normalize": Flag(),
}


def register_optimizer(
    name: str,
    *,
    order: int,
    state: str,
    defaults: dict | None = None,
    source: str,
    summary: str = "",
    needs_closure: bool = False,
    domains: dict[str, Domain] | None = None,
) -> Callable[[OptimizerFactory], OptimizerFactory]:
    """Register ``factory(param_groups, **hp) -> Optimizer`` under ``name``.

    ``needs_closure`` marks optimizers whose ``step`` must re-evaluate the loss (line searches,
    second-order methods): the training engine then passes a closure over the current batch.
    ``domains`` narrows a hyperparameter's domain for this optimizer (Nesterov's momentum must
    be above 0), over ``HYPERPARAMETER_DOMAINS``. Without ``defaults``, the keyword defaults of
    the factory's signature (an optimizer class's ``__init__``) are the hyperparameters.
    """

    def decorate(factory: OptimizerFactory) -> OptimizerFactory:
        if defaults is None:
            parameters = inspect.signature(factory).parameters.values()
            hyperparameters = {p.name: p.default for p in parameters if p.default is not p.empty}
        _REGISTRY[name] = OptimizerEntry(
            name,
            factory,
            order,
            state,
            dict(hyperparameters if defaults is None else defaults),
            source,
            summary,
            needs_closure,
            dict(domains or {}),
        )
        return factory

    return decorate


def list_optimizers() -> list[OptimizerEntry]:
    """Every registered optimizer, first-order ones first."""
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.name))


def optimizer_entry(name: str) -> OptimizerEntry:
    """The registered optimizer called ``name`` (case-insensitive); unknown names suggest one."""
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise unknown_name("optimizer", name, _REGISTRY, "run `cnnlab optimizers`")
    return _REGISTRY[key]


def param_groups(
    params: nn.Module | Iterable, weight_decay: float, decay_norm_and_bias: bool = True
) -> list[dict]:
    """Parameter groups with weight decay, optionally sparing biases and normalisation weights.

    Decaying BN scales and biases pulls them to zero for no regularisation benefit, which is why
    many recipes skip them; a plain iterable of tensors or groups is passed through unchanged.
    """
    if not isinstance(params, nn.Module):
        if isinstance(params, torch.Tensor):
            params = [params]
        if not isinstance(params, Iterable) or isinstance(params, str | dict):
            raise ConfigError(
                f"create_optimizer: params must be a model, an iterable of tensors or a list of "
                f"parameter groups (dicts with 'params'), got {type(params).__name__}"
            )
        items = list(params)
        if items and all(isinstance(g, dict) for g in items):
            return [_group(g, weight_decay) for g in items]
        if not all(isinstance(p, torch.Tensor) for p in items):
            raise ConfigError(
                "create_optimizer: params must be all tensors or all parameter groups (dicts "
                "with 'params'), not a mixture or other values"
            )
        return [{"params": items, "weight_decay": weight_decay}]
    trainable = [(n, p) for n, p in params.named_parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": [p for _, p in trainable], "weight_decay": weight_decay}]
    no_decay = {id(p) for m in params.modules() if _is_norm(m) for p in m.parameters(recurse=False)}
    no_decay |= {id(p) for n, p in trainable if n.endswith("bias")}
    decay = [p for _, p in trainable if id(p) not in no_decay]
    spared = [p for _, p in trainable if id(p) in no_decay]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": spared, "weight_decay": 0.0},
    ]


def _group(group: dict, weight_decay: float) -> dict:
    """A copy of a user's group, its params listed, with ``weight_decay`` unless it has one."""
    if "params" not in group:
        raise ConfigError("create_optimizer: every parameter group needs a 'params' entry")
    params = group["params"]
    params = [params] if isinstance(params, torch.Tensor) else list(params)
    if not all(isinstance(p, torch.Tensor) for p in params):
        raise ConfigError("create_optimizer: a parameter group's 'params' must be tensors")
    return {"weight_decay": weight_decay, **group, "params": params}


def _is_norm(module: nn.Module) -> bool:
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
    return isinstance(module, norms)


def check_hyperparameters(entry: OptimizerEntry, values: dict) -> None:
    """Each hyperparameter in its domain, and the Wolfe constants ordered ``0 < c1 < c2 < 1``."""
    where = f"optimizer '{entry.name}'"
    check_all(where, values, {**HYPERPARAMETER_DOMAINS, **entry.domains})
    if "c1" in values and "c2" in values and not values["c1"] < values["c2"]:
        raise ConfigError(
            f"{where}: the line-search constants must satisfy 0 < c1 < c2 < 1 (sufficient "
            f"decrease below curvature), got c1={values['c1']!r}, c2={values['c2']!r}"
        )


def create_optimizer(
    name: str,
    params: nn.Module | Iterable,
    *,
    weight_decay: float | None = None,
    decay_norm_and_bias: bool = True,
    **hyperparameters,
) -> torch.optim.Optimizer:
    """Create a registered optimizer over a model's parameters (or explicit parameter groups).

    Hyperparameters not given take the lectures' defaults shown by ``cnnlab optimizers``;
    unknown ones, and values outside their meaning (momentum outside [0, 1), eps <= 0, ...),
    raise a ``ConfigError`` naming the accepted ones. ``weight_decay=None`` takes the
    optimizer's own default (0.0005 for ``alexnet``, whose rule includes it; 0 otherwise); it
    applies to every group that does not set its own.
    """
    check("create_optimizer", "name", name, _NAME)
    entry = optimizer_entry(name)
    where = f"optimizer '{entry.name}'"
    defaults = dict(entry.defaults)
    default_decay = defaults.pop("weight_decay", 0.0)
    weight_decay = default_decay if weight_decay is None else weight_decay
    check(where, "weight_decay", weight_decay, NON_NEGATIVE)
    check(where, "decay_norm_and_bias", decay_norm_and_bias, Flag())
    unknown = set(hyperparameters) - set(defaults)
    if unknown:
        raise ConfigError(
            f"optimizer '{entry.name}' takes no {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(defaults)) or 'no hyperparameters'} and weight_decay"
        )
    hp = {**defaults, **hyperparameters}
    check_hyperparameters(entry, hp)
    groups = param_groups(params, weight_decay, decay_norm_and_bias)
    for group in groups:
        check_hyperparameters(entry, {**hp, **group})
    if not any(p.requires_grad for group in groups for p in group["params"]):
        raise ConfigError(
            f"optimizer '{entry.name}' got no trainable parameters (none given, or every one has "
            f"requires_grad=False); pass the model, or unfreeze the parameters to train"
        )
    return entry.factory(groups, **hp)
