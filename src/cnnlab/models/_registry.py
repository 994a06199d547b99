"""The model registry: builders registered by name, created by name, listed with wildcards.

The contract every model of the zoo follows (a new family file follows it too):

* A builder is a function of keyword options only, ``num_classes`` and ``in_chans`` among
  them, with the paper's defaults; its docstring names the paper and the table or figure it
  follows. It returns an :class:`cnnlab.nn.classifier.ImageClassifier` (timm's
  ``forward_features``/``forward_head``/``num_features``/``reset_classifier``).
* Everything the rest of cnnlab needs to know about the model is declared once, where it is
  registered, and kept in its :class:`ModelEntry` (as timm keeps pretrained configs)::

      @register_model(input_size=(3, 32, 32), paper="He et al. 2016")
      def resnet56(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> ResNet:

  ``input_size`` is the (C, H, W) the paper feeds it; ``default_loss``, ``aux_loss_weight``
  and ``recipes`` default to cross-entropy, no auxiliary loss and no recipe of its own.
* Calling the registered builder (directly or through :func:`create_model`) checks its options
  against its signature, and against the class it returns where it passes ``**kwargs`` on,
  then sets ``default_input_size`` (C = ``in_chans``), ``default_loss`` and
  ``aux_loss_weight`` on the model from the entry, the same way for every model.
* The family's module is imported by name in ``cnnlab/models/__init__.py``.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from cnnlab.errors import ConfigError, unknown_name
from cnnlab.validate import Instance, Number, Text, check, check_all, check_annotated

ModelBuilder = Callable[..., nn.Module]
Builder = typing.TypeVar("Builder", bound=ModelBuilder)  # a decorated builder keeps its type
InputSize = tuple[int, int, int]
# The input size as a function of the builder's options, for a model where an option changes
# it (MobileNet's resolution multiplier): called with every option, defaults included.
InputSizeRule = Callable[[dict[str, typing.Any]], InputSize]


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and what the rest of cnnlab needs to know about its model.

    Attributes:
        name: the name users type (the builder's function name).
        builder: the builder function as written in its family's module.
        family: the family ``cnnlab models`` groups it under.
        paper: who published it, and when ("He et al. 2016").
        input_size: ``(C, H, W)`` the paper feeds it (or a rule of the builder's options).
        default_loss: the loss ``cnnlab train`` uses unless told otherwise.
        aux_loss_weight: weight of each auxiliary classifier's loss in training (0: none).
        recipes: names of the recipes written for this model; ``cnnlab train`` looks at
            them first when it picks a recipe for the dataset asked.
    """

    name: str
    builder: ModelBuilder
    family: str
    paper: str
    input_size: InputSize | InputSizeRule
    default_loss: str = "cross_entropy"
    aux_loss_weight: float = 0.0
    recipes: tuple[str, ...] = ()

    @property
    def year(self) -> int | None:
        found = re.search(r"(19|20)\d\d", self.paper)
        return int(found.group()) if found else None

    def default_input_size(self, options: dict[str, typing.Any]) -> InputSize:
        """``(C, H, W)`` of a model built with ``options`` (C is its ``in_chans``)."""
        size = self.input_size(options) if callable(self.input_size) else self.input_size
        return (options.get("in_chans", size[0]), *size[1:])

    def options(self, kwargs: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """Every option a build with ``kwargs`` uses, the builder's defaults filled in.

        Raises:
            ConfigError: an option the builder does not take (one line naming those it does).
        """
        signatures = _signatures(self.builder)
        try:
            bound = signatures[0].bind(**kwargs)
            passed_on = _passed_on(bound)
            if len(signatures) > 1:
                signatures[1].bind_partial(**passed_on)
        except TypeError:
            # a class's options without a default are the builder's to give, not the user's
            takes = _named(signatures[0]) + [
                name for sig in signatures[1:] for name in _named(sig, with_defaults_only=True)
            ]
            takes = list(dict.fromkeys(takes))
            unknown = [repr(key) for key in kwargs if key not in takes]
            raise ConfigError(
                f"model '{self.name}' takes no option {', '.join(unknown)}; "
                f"it takes {', '.join(takes)}"
            ) from None
        bound.apply_defaults()
        named = {k: v for k, v in bound.arguments.items() if k in _named(signatures[0])}
        return {**named, **passed_on}

    def create(self, **kwargs) -> nn.Module:
        """Build the model and describe it with this entry (see the module docstring)."""
        options = self.options(kwargs)
        model: typing.Any = self.builder(**kwargs)  # torch types module attributes as tensors
        model.default_input_size = self.default_input_size(options)
        model.default_loss = self.default_loss
        model.aux_loss_weight = self.aux_loss_weight
        return model

    @property
    def weights(self) -> list[str]:
        """The ``weights=`` names this model has (torchvision's, then cnnlab's own)."""
        from cnnlab.models.weights import available_weights

        return available_weights(self.name)


def _signatures(builder: ModelBuilder) -> list[inspect.Signature]:
    """The builder's signature, then that of the class it returns if it passes ``**kwargs`` on.

    The class is read from the builder's return annotation; without one (or with a bare
    ``nn.Module``) the options passed on are left for the class to check.
    """
    signature = inspect.signature(builder)
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return [signature]
    returned = _returned_class(builder)
    return [signature] if returned is None else [signature, inspect.signature(returned)]


def _returned_class(builder: ModelBuilder) -> type | None:
    """The model class a builder's return annotation names (not a bare ``nn.Module``)."""
    try:
        returned = typing.get_type_hints(builder).get("return")
    except (NameError, TypeError):  # an annotation that cannot be resolved at run time
        return None
    return returned if isinstance(returned, type) and returned is not nn.Module else None


def _named(signature: inspect.Signature, with_defaults_only: bool = False) -> list[str]:
    """The options a signature names (``with_defaults_only``: those a caller may leave out)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        name
        for name, p in signature.parameters.items()
        if p.kind not in variadic and not (with_defaults_only and p.default is p.empty)
    ]


def _passed_on(bound: inspect.BoundArguments) -> dict[str, typing.Any]:
    """The options a builder's ``**kwargs`` collected."""
    for name, parameter in bound.signature.parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            return dict(bound.arguments.get(name, {}))
    return {}


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    builder: ModelBuilder | None = None,
    *,
    input_size: InputSize | InputSizeRule | None = None,
    paper: str | None = None,
    family: str | None = None,
    default_loss: str = "cross_entropy",
    aux_loss_weight: float = 0.0,
    recipes: tuple[str, ...] = (),
) -> Callable[[Builder], Builder]:
    """Register a builder under its function name, with what cnnlab needs to know about it.

    Without ``paper`` the module's ``PAPER`` constant is used; without ``family`` the module
    name (``cnnlab.models.vgg`` -> ``vgg``). The other arguments are :class:`ModelEntry`'s.
    The decorated builder checks its options and describes the model it builds, so calling it
    directly gives the same model as :func:`create_model`.
    """

    if builder is not None or input_size is None:
        raise TypeError("register a model with its input size: @register_model(input_size=...)")

    def decorate(builder: Builder) -> Builder:
        import sys

        module = sys.modules.get(builder.__module__)
        entry = ModelEntry(
            name=builder.__name__,
            builder=builder,
            family=family or builder.__module__.rsplit(".", 1)[-1],
            paper=paper or str(getattr(module, "PAPER", "")),
            input_size=input_size,
            default_loss=default_loss,
            aux_loss_weight=aux_loss_weight,
            recipes=tuple(recipes),
        )
        if entry.name in _REGISTRY and _REGISTRY[entry.name].builder is not builder:
            raise ValueError(f"model '{entry.name}' is registered twice")
        _REGISTRY[entry.name] = entry

        @functools.wraps(builder)
        def build(**kwargs) -> nn.Module:
            return entry.create(**kwargs)

        return typing.cast(Builder, build)

    return decorate


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
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model by name.

    ``num_classes`` and ``in_chans`` are passed only when given, so each builder keeps its
    paper's defaults (1000 ImageNet classes, 10 CIFAR classes, 1 channel for LeNet-5...).
    ``weights`` (``"IMAGENET1K_V1"``, ``"DEFAULT"``, ``"cifar10"``, ...) and ``weights_file``
    (a local state dict, checkpoint or safetensors file) load weights through
    :func:`cnnlab.models.weights.pretrained_model`. Arguments of the wrong type (a string or
    a float where an int belongs, ``None``) or out of range are a ``ConfigError`` naming them.
    ``features_only=True`` returns the model's feature pyramid instead (``out_indices`` picks
    levels): a module that returns ``{layer name: maps}``, see
    :func:`cnnlab.models.features.features_only`.
    """
    if features_only:
        from cnnlab.models.features import features_only as pyramid

        model = create_model(
            name,
            num_classes=num_classes,
            in_chans=in_chans,
            weights=weights,
            weights_file=weights_file,
            **kwargs,
        )
        return pyramid(model, out_indices)
    check("create_model", "name", name, Text())
    for option, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        check("create_model", option, value, Number(low=1, integer=True, optional=True))
    check("create_model", "weights", weights, Text(optional=True))
    check(
        "create_model", "weights_file", weights_file, Instance((str, Path), "a path", optional=True)
    )
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
    _check_option_types(entry, kwargs)
    try:
        return entry.create(**kwargs)
    except TypeError as error:  # an option the builder sets itself, passed again by the user
        fixed = re.search(r"got multiple values for (?:keyword )?argument '(\w+)'", str(error))
        if fixed is None:
            raise
        raise ConfigError(
            f"model '{entry.name}' sets {fixed[1]} itself (it is part of what {entry.name} "
            f"is); leave {fixed[1]} out, or pick the registered model with the one you want"
        ) from None


_PROBABILITY = Number(low=0, high=1, high_open=True)
_COUNT = Number(low=1, integer=True)
#: what the options shared by several families mean; checked before torch sees them (a
#: dropout of 1.5 would otherwise be torch's ValueError from deep inside the builder)
OPTION_DOMAINS = {
    "dropout": _PROBABILITY,
    "dropout_aux": _PROBABILITY,
    "drop_rate": _PROBABILITY,
    "global_drop": _PROBABILITY,
    "local_drop": _PROBABILITY,
    "drop_path": _PROBABILITY,
    "compression": Number(low=0, high=1, low_open=True),
    "width_mult": Number(low=0, low_open=True),
    "resolution_mult": Number(low=0, low_open=True),
    "groups": _COUNT,
    "width_per_group": _COUNT,
    "growth_rate": _COUNT,
    "bn_size": _COUNT,
    "num_init_features": _COUNT,
    "hidden_units": _COUNT,
    "num_columns": _COUNT,
    "middle_repeats": _COUNT,
    "kernel_5x5": _COUNT,
    "pool4_kernel": _COUNT,
}


def _check_option_types(entry: ModelEntry, kwargs: dict[str, typing.Any]) -> None:
    """Each option against the type its builder (or the class it passes options on to)
    annotates, so ``depth=20.5`` or ``dropout="0.3"`` fail here in one line, then against
    the range ``OPTION_DOMAINS`` gives its name."""
    where = f"model '{entry.name}'"
    check_annotated(where, entry.builder, kwargs)
    check_all(where, {k: v for k, v in kwargs.items() if not isinstance(v, bool)}, OPTION_DOMAINS)
    returned = _returned_class(entry.builder)
    if returned is not None:
        named = set(inspect.signature(entry.builder).parameters)
        check_annotated(
            where, returned.__init__, {k: v for k, v in kwargs.items() if k not in named}
        )


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
