"""cnnlab: build, size, train, compare and understand the classic convolutional networks.

The public API is re-exported here lazily, so ``import cnnlab`` stays cheap and the command
line starts fast.
"""

from __future__ import annotations

from cnnlab._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "CnnlabError": "cnnlab.errors",
    "create_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "register_model": "cnnlab.models",
    "summary": "cnnlab.sizing",
    "separable_cost_ratio": "cnnlab.nn.separable",
    "build_spec": "cnnlab.nn.spec",
    "create_optimizer": "cnnlab.optim",
    "list_optimizers": "cnnlab.optim",
    "clip_gradients": "cnnlab.optim",
    "load_dataset": "cnnlab.data",
    "train": "cnnlab.train",
    "evaluate": "cnnlab.evaluate",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
