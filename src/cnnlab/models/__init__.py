"""The model zoo: one module per family, each registering its builders on import.

Every module in this package (except private ones) is imported here, so adding a family is
adding a file.
"""

import importlib
import pkgutil

from cnnlab.models._registry import (
    ModelEntry,
    create_model,
    list_entries,
    list_models,
    model_entry,
    register_model,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ModelEntry",
    "create_model",
    "list_entries",
    "list_models",
    "model_entry",
    "register_model",
]
