"""Training: the engine behind ``cnnlab train``/``resume``, paper recipes, the metrics log.

The engine draws nothing: ``cnnlab.runs`` (above ``cnnlab.viz``) hands it the curve drawing as
its epoch-end hook. Checkpoints are ``cnnlab.checkpoint``, below evaluation, which loads them.

Names are resolved lazily so that reading a light module (``cnnlab.training.config`` for the
command line's choices) does not import torch.
"""

from __future__ import annotations

from cnnlab._lazy import lazy_exports

_EXPORTS = {
    "RunResult": "cnnlab.training.engine",
    "TrainingInterrupted": "cnnlab.training.engine",
    "resume": "cnnlab.training.engine",
    "train": "cnnlab.training.engine",
    "TrainConfig": "cnnlab.training.config",
    "resolve_config": "cnnlab.training.config",
    "get_recipe": "cnnlab.training.recipes",
    "list_recipes": "cnnlab.training.recipes",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
