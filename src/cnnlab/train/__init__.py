"""Training: the engine behind ``cnnlab train``/``resume``, paper recipes, checkpoints, metrics.

Names are resolved lazily so that reading a light module (``cnnlab.train.config`` for the
command line's choices) does not import torch.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cnnlab.train' has no attribute '{name}'")
