"""cnnlab: build, size, train, compare and understand the classic convolutional networks.

The public API is re-exported here lazily, so ``import cnnlab`` stays cheap and the command
line starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnlab._lazy import lazy_exports

if TYPE_CHECKING:  # editors and type checkers see the names the lazy exports resolve to
    from cnnlab.data import load_dataset
    from cnnlab.errors import CnnlabError
    from cnnlab.evaluation import evaluate, predict
    from cnnlab.export import export_model
    from cnnlab.models import create_model, feature_extractor, list_models, register_model
    from cnnlab.nn.separable import separable_cost_ratio
    from cnnlab.nn.spec import build_spec
    from cnnlab.optim import clip_gradients, create_optimizer, list_optimizers
    from cnnlab.runs import train
    from cnnlab.sizing import summary

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
    "train": "cnnlab.runs",
    "evaluate": "cnnlab.evaluation",
    "predict": "cnnlab.evaluation",
    "export_model": "cnnlab.export",
    "feature_extractor": "cnnlab.models",
}

__all__ = [
    "CnnlabError",
    "build_spec",
    "clip_gradients",
    "create_model",
    "create_optimizer",
    "evaluate",
    "export_model",
    "feature_extractor",
    "list_models",
    "list_optimizers",
    "load_dataset",
    "predict",
    "register_model",
    "separable_cost_ratio",
    "summary",
    "train",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
