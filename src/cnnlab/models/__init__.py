"""The model zoo: one module per family, each registering its builders on import.

The families are imported here by name, so what the zoo holds is written down in one place:
a new family is a new file plus one line below (see ``_registry.py`` for the contract).
"""

from cnnlab.models import (  # noqa: F401  (imported for their registrations)
    alexnet,
    densenet,
    fractalnet,
    googlenet,
    inception,
    lenet,
    mobilenet,
    resnet,
    resnext,
    shufflenet,
    speedrun,
    squeezenet,
    vgg,
    xception,
    zfnet,
)
from cnnlab.models._registry import (
    ModelEntry,
    create_model,
    list_entries,
    list_models,
    model_entry,
    register_model,
)
from cnnlab.models.features import feature_extractor

__all__ = [
    "ModelEntry",
    "create_model",
    "feature_extractor",
    "list_entries",
    "list_models",
    "model_entry",
    "register_model",
]
