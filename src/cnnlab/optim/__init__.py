"""Optimizers: the registry, torch.optim's optimizers with the lectures' defaults, and the ones
torch lacks (second-order methods, Polyak-form momentum)."""

import importlib
import pkgutil

from cnnlab.optim.clipping import clip_gradients
from cnnlab.optim.registry import (
    OptimizerEntry,
    create_optimizer,
    list_optimizers,
    optimizer_entry,
    register_optimizer,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in {"registry", "lab", "tables"} and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "OptimizerEntry",
    "clip_gradients",
    "create_optimizer",
    "list_optimizers",
    "optimizer_entry",
    "register_optimizer",
]
