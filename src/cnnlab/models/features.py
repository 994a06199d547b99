"""Feature extraction: the outputs of named layers, by the names ``cnnlab summary`` prints.

``feature_extractor(model, ["layer1", "layer2.0.relu:2"])`` wraps a model so that calling it
returns ``{name: output}`` for those layers. A name is a module name (``model.named_modules()``);
a module called more than once in one forward pass (torchvision's ResNet blocks reuse one ReLU
after the first convolution and after the addition) is named ``name`` for its first call and
``name:2``, ``name:3``, ... for the later ones, exactly as the summary's rows are named.

Forward hooks on the named modules do the work, not graph tracing:
``torchvision.models.feature_extraction.create_feature_extractor`` cannot trace five of the
zoo's models (both GoogLeNets, Inception-v3, both LeNet-5s: their forward passes branch on
Python values) and names functional nodes (``add``, ``relu_1``) that no module carries. A hook
sees every module call whatever the forward pass does; the pass stops as soon as every asked
layer has been seen, so early layers cost only the layers before them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from cnnlab.errors import ConfigError, unknown_name

_CALL = re.compile(r"^(?P<module>.*?)(?::(?P<call>\d+))?$")


def call_name(module_name: str, call: int) -> str:
    """The name of a module's ``call``-th call (1-based) in one forward pass: the module name
    for the first, ``name:2``, ``name:3``, ... for the later ones."""
    return module_name if call == 1 else f"{module_name}:{call}"


def parse_call_name(name: str) -> tuple[str, int]:
    """``"layer1.0.relu:2"`` -> ``("layer1.0.relu", 2)``; a plain module name is call 1."""
    found = _CALL.match(name.strip())
    if found is None:  # the pattern matches every string; this keeps type checkers informed
        raise ConfigError(f"cannot read layer name '{name}'")
    return found["module"], int(found["call"] or 1)


class _AllCaptured(Exception):
    """Raised by the last needed hook to end the forward pass early."""


class FeatureExtractor(nn.Module):
    """A model whose forward pass returns the outputs of chosen layers, ``{name: output}``.

    The wrapped model keeps its weights and mode (``.train()``/``.eval()`` pass through to it);
    the returned dict is in the order the names were given.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        super().__init__()
        if isinstance(layers, str) or not layers:
            raise ConfigError("give the layer names as a non-empty list, e.g. ['layer1', 'layer2']")
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        modules = dict(model.named_modules())
        self._wanted: dict[nn.Module, dict[int, str]] = {}
        for name in self.layers:
            module_name, call = parse_call_name(name)
            if not module_name or module_name not in modules or call < 1:
                names = [n for n in modules if n]
                raise unknown_name(
                    f"layer of {type(model).__name__}",
                    name,
                    names,
                    "run `cnnlab summary MODEL` for its layer names",
                )
            self._wanted.setdefault(modules[module_name], {})[call] = name
        self._calls: dict[nn.Module, int] = {}
        self._captured: dict[str, torch.Tensor] = {}
        self.feature_info: list[FeatureStage] = []  # filled by features_only
        self._handles = [module.register_forward_hook(self._hook) for module in self._wanted]

    def _hook(self, module: nn.Module, args, output) -> None:
        count = self._calls.get(module, 0) + 1
        self._calls[module] = count
        name = self._wanted[module].get(count)
        if name is not None:
            self._captured[name] = output
            if len(self._captured) == len(self.layers):
                raise _AllCaptured

    def forward(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        self._calls, self._captured = {}, {}
        try:
            self.model(*args, **kwargs)
        except _AllCaptured:
            pass
        missing = [name for name in self.layers if name not in self._captured]
        if missing:
            counts = {
                n: self._calls.get(m, 0)
                for m, calls in self._wanted.items()
                for n in calls.values()
            }
            said = ", ".join(f"{n} (module called {counts[n]} times)" for n in missing)
            raise ConfigError(
                f"{said}: not reached in this forward pass (a later call that does not happen, "
                "or a branch the model skips in this mode); see `cnnlab summary` for the calls"
            )
        captured, self._captured = self._captured, {}
        return {name: captured[name] for name in self.layers}

    def remove(self) -> nn.Module:
        """Take the hooks off and give back the plain model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return self.model


def feature_extractor(model: nn.Module, layers: Sequence[str]) -> FeatureExtractor:
    """Wrap ``model`` so that calling it returns ``{layer name: output}`` for ``layers``.

    Args:
        model: any ``nn.Module`` (a registered model, a checkpoint's, your own).
        layers: module names as ``cnnlab summary`` prints them (``features.3``, ``layer2``,
            ``layer1.0.relu:2`` for a module's second call).

    Raises:
        UnknownNameError: a name that is no module of ``model`` (nearest names suggested).
    """
    return FeatureExtractor(model, layers)


#: Maps smaller than this fraction of the previous ones start a new feature level.
SHRINK = 0.75


@dataclass(frozen=True)
class FeatureStage:
    """One level of a model's feature pyramid (timm's ``feature_info``).

    Attributes:
        name: the layer whose output it is, as ``cnnlab summary`` names it.
        channels: its number of maps.
        reduction: input side / map side, at the model's default input size.
    """

    name: str
    channels: int
    reduction: float


def _trunk(model: nn.Module) -> dict[nn.Module, str]:
    """Modules reached from the root through ``nn.Sequential`` containers only.

    Their outputs lie on the network's main path; a block's insides (a residual branch, an
    Inception module's parallel branches) sit behind a block of another class and do not.
    """
    trunk: dict[nn.Module, str] = {}

    def walk(container: nn.Module, prefix: str) -> None:
        for name, child in container.named_children():
            trunk[child] = prefix + name
            if isinstance(child, nn.Sequential):
                walk(child, f"{prefix}{name}.")

    walk(model, "")
    return trunk


def feature_stages(model: nn.Module) -> list[FeatureStage]:
    """The last main-path layer at each spatial resolution of ``model.forward_features``.

    Found, not written down per family: ``forward_features`` runs once on a meta-device copy
    (no memory, no arithmetic) at the model's ``default_input_size``, and each 4-D output of a
    main-path module (see :func:`_trunk`) is recorded as the module finishes; the last one
    before the maps shrink is a stage. For torchvision's ResNets that is ``relu``, ``layer1``
    ... ``layer4``, timm's choice. A shrink of less than :data:`SHRINK` (an unpadded
    convolution's border) stays on the same level.
    """
    import copy

    channels, height, width = model.default_input_size  # type: ignore[misc]
    meta = copy.deepcopy(model).to("meta").eval()
    trunk = _trunk(meta)
    calls: dict[nn.Module, int] = {}
    finished: list[tuple[str, tuple[int, ...]]] = []

    def record(module: nn.Module, args, output) -> None:
        calls[module] = calls.get(module, 0) + 1
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            finished.append((call_name(trunk[module], calls[module]), tuple(output.shape[1:])))

    handles = [module.register_forward_hook(record) for module in trunk]
    try:
        with torch.no_grad():
            cast(Any, meta).forward_features(torch.empty(1, channels, height, width, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    # a new level where the maps shrink by a stride, not by an unpadded convolution's border
    stages = []
    for index, (name, shape) in enumerate(finished):
        later = finished[index + 1][1] if index + 1 < len(finished) else None
        if later is None or later[1] < SHRINK * shape[1]:
            stages.append(FeatureStage(name, shape[0], height / shape[1]))
    return stages


def features_only(model: nn.Module, out_indices: Sequence[int] | None = None) -> FeatureExtractor:
    """``create_model(..., features_only=True)``: the model's feature pyramid as named maps.

    Args:
        model: a zoo model (``forward_features`` and ``default_input_size``).
        out_indices: which of :func:`feature_stages` to return (negative: from the end);
            default all.

    Returns:
        A :class:`FeatureExtractor` over those stages; ``feature_info`` lists them.
    """
    stages = feature_stages(model)
    indices = list(range(len(stages)) if out_indices is None else out_indices)
    if not all(isinstance(i, int) and -len(stages) <= i < len(stages) for i in indices):
        raise ConfigError(
            f"out_indices {tuple(indices)} do not index the {len(stages)} feature stages of "
            f"{type(model).__name__} ({', '.join(s.name for s in stages)})"
        )
    chosen = [stages[i] for i in indices]
    extractor = FeatureExtractor(model, [stage.name for stage in chosen])
    extractor.feature_info = chosen
    return extractor
