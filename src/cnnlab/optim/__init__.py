"""Optimizers: the registry, torch.optim's optimizers with the lectures' defaults, and the ones
torch lacks (second-order methods, Polyak-form momentum)."""

# the modules whose optimizers register themselves on import, named so a reader sees them
from cnnlab.optim import (  # noqa: F401  (imported for their registrations)
    bfgs,
    conjugate_gradient,
    hessian_free,
    muon,
    newton,
    polyak,
    torch_optimizers,
)
from cnnlab.optim.clipping import clip_gradients
from cnnlab.optim.registry import (
    OptimizerEntry,
    create_optimizer,
    list_optimizers,
    optimizer_entry,
    register_optimizer,
)

__all__ = [
    "OptimizerEntry",
    "clip_gradients",
    "create_optimizer",
    "list_optimizers",
    "optimizer_entry",
    "register_optimizer",
]
