"""Training: the engine behind ``cnnlab train``/``resume``, paper recipes, checkpoints, metrics.

Names are resolved lazily so that reading a light module (``cnnlab.train.config`` for the
command line's choices) does not import torch.
"""

from __future__ import annotations

from cnnlab._lazy import lazy_exports, make_callable

_EXPORTS = {
    "RunResult": "cnnlab.train.engine",
    "TrainingInterrupted": "cnnlab.train.engine",
    "resume": "cnnlab.train.engine",
    "train": "cnnlab.train.engine",
    "TrainConfig": "cnnlab.train.config",
    "resolve_config": "cnnlab.train.config",
    "get_recipe": "cnnlab.train.recipes",
    "list_recipes": "cnnlab.train.recipes",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
make_callable(__name__)
