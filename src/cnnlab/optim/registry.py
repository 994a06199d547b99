"""One registry for every optimizer of the lectures: ``create_optimizer(name, params, **hp)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnlab.errors import ConfigError, unknown_name

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


_REGISTRY: dict[str, OptimizerEntry] = {}


def register_optimizer(
    name: str,
    *,
    order: int,
    state: str,
    defaults: dict,
    source: str,
    summary: str = "",
    needs_closure: bool = False,
) -> Callable[[OptimizerFactory], OptimizerFactory]:
    """Register ``factory(param_groups, **hp) -> Optimizer`` under ``name``.

    ``needs_closure`` marks optimizers whose ``step`` must re-evaluate the loss (line searches,
    second-order methods): the training engine then passes a closure over the current batch.
    """

    def decorate(factory: OptimizerFactory) -> OptimizerFactory:
        _REGISTRY[name] = OptimizerEntry(
            name, factory, order, state, dict(defaults), source, summary, needs_closure
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
        groups = list(params)
        if groups and isinstance(groups[0], dict):
            return groups
        return [{"params": groups, "weight_decay": weight_decay}]
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


def _is_norm(module: nn.Module) -> bool:
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
    return isinstance(module, norms)


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
    unknown ones raise a ``ConfigError`` naming the accepted ones. ``weight_decay=None`` takes
    the optimizer's own default (0.0005 for ``alexnet``, whose rule includes it; 0 otherwise).
    """
    entry = optimizer_entry(name)
    defaults = dict(entry.defaults)
    default_decay = defaults.pop("weight_decay", 0.0)
    weight_decay = default_decay if weight_decay is None else weight_decay
    if weight_decay < 0:
        raise ConfigError(f"weight decay must be >= 0, got {weight_decay}")
    unknown = set(hyperparameters) - set(defaults)
    if unknown:
        raise ConfigError(
            f"optimizer '{entry.name}' takes no {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(defaults)) or 'no hyperparameters'} and weight_decay"
        )
    hp = {**defaults, **hyperparameters}
    if "lr" in hp and not hp["lr"] > 0:
        raise ConfigError(f"learning rate must be > 0, got {hp['lr']}")
    groups = param_groups(params, weight_decay, decay_norm_and_bias)
    return entry.factory(groups, **hp)
