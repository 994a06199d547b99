"""The model registry: builders registered by name, created by name, listed with wildcards."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from cnnlab.errors import ConfigError, unknown_name

ModelBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and what ``cnnlab models`` shows about it."""

    name: str
    builder: ModelBuilder
    family: str
    paper: str

    @property
    def year(self) -> int | None:
        found = re.search(r"(19|20)\d\d", self.paper)
        return int(found.group()) if found else None

    @property
    def weights(self) -> list[str]:
        """The ``weights=`` names this model has (torchvision's, then cnnlab's own)."""
        from cnnlab.models.weights import available_weights

        return available_weights(self.name)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: ModelBuilder | None = None, *, paper: str | None = None, family: str | None = None
):
    """Register a builder under its function name.

    Usable bare (``@register_model``) or with metadata
    (``@register_model(paper="He et al. 2016")``).
    Without ``paper`` the module's ``PAPER`` constant is used; without ``family`` the module name
    (``cnnlab.models.vgg`` -> ``vgg``).
    """

    def decorate(builder: ModelBuilder) -> ModelBuilder:
        import sys

        module = sys.modules.get(builder.__module__)
        entry = ModelEntry(
            name=builder.__name__,
            builder=builder,
            family=family or builder.__module__.rsplit(".", 1)[-1],
            paper=paper or getattr(module, "PAPER", ""),
        )
        if entry.name in _REGISTRY and _REGISTRY[entry.name].builder is not builder:
            raise ValueError(f"model '{entry.name}' is registered twice")
        _REGISTRY[entry.name] = entry
        return builder

    return decorate(fn) if fn is not None else decorate


def _ensure_families_loaded() -> None:
    import cnnlab.models  # noqa: F401  (importing the package registers every family)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name suggests the nearest ones."""
    _ensure_families_loaded()
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY, "run `cnnlab models`")
    return _REGISTRY[key]


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model by name.

    ``num_classes`` and ``in_chans`` are passed only when given, so each builder keeps its
    paper's defaults (1000 ImageNet classes, 10 CIFAR classes, 1 channel for LeNet-5...).
    ``weights`` (``"IMAGENET1K_V1"``, ``"DEFAULT"``, ``"cifar10"``, ...) and ``weights_file``
    (a local state dict, checkpoint or safetensors file) load weights through
    :func:`cnnlab.models.weights.pretrained_model`.
    """
    if weights is not None or weights_file is not None:
        from cnnlab.models.weights import pretrained_model

        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        if in_chans is not None:
            kwargs["in_chans"] = in_chans
        return pretrained_model(name, weights, weights_file, **kwargs)
    entry = model_entry(name)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    try:
        model = entry.builder(**kwargs)
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        option = str(error).rsplit("argument", 1)[-1].strip()
        raise ConfigError(
            f"model '{entry.name}' takes no option {option}; see the docstring of "
            f"cnnlab.models.{entry.family}.{entry.name} for the options it accepts"
        ) from None
    if not hasattr(model, "default_input_size"):
        raise TypeError(f"builder '{entry.name}' returned a model without default_input_size")
    return model


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names in natural order; ``pattern`` takes shell wildcards (``resnet*``)."""
    _ensure_families_loaded()
    names = sorted(_REGISTRY, key=natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern.lower())]
    return names


def natural_key(name: str) -> list:
    """Sort key that puts resnet20 before resnet110."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_entries(pattern: str | None = None) -> list[ModelEntry]:
    """Registry entries matching ``pattern``, grouped by family then in natural name order."""
    entries = [_REGISTRY[n] for n in list_models(pattern)]
    return sorted(entries, key=lambda e: (e.family, natural_key(e.name)))
