"""Names and specs resolved into modules, built on the meta device for sizing.

``cnnlab summary``, ``cnnlab models`` and the comparison plots take a registered model name or
a sequential spec as readily as an ``nn.Module``; this module turns the first two into the
third, so the sizing code only ever sizes modules. Building on ``meta`` allocates nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.errors import ConfigError, GeometryError
from cnnlab.geometry.fit import smallest_square_input, square_input, too_small_error
from cnnlab.geometry.units import dims
from cnnlab.models._registry import create_model, model_entry
from cnnlab.nn.spec import DEFAULT_INPUT_SIZE, build_spec, looks_like_spec

# In-place tensor methods that only fill values; torch.nn.init's functions are added below.
_FILLS = {"normal_", "uniform_", "fill_", "zero_", "copy_", "exponential_", "random_"}


class _MetaBuild(TorchFunctionMode):
    """Build on the meta device without running weight initialisation.

    A meta tensor has no values to fill, yet torch still checks each ``normal_``/``uniform_``
    through Python reference code (about 2 ms each), which makes initialisation most of the
    cost of building a deep network there; shapes are all sizing needs.
    """

    fills = _FILLS | {name for name in vars(nn.init) if name.endswith("_") and name[0] != "_"}

    def __enter__(self):
        self._device = torch.device("meta")
        self._device.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self._device.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        target = args[0] if args else None
        if getattr(func, "__name__", "") in self.fills and getattr(target, "is_meta", False):
            return target
        return func(*args, **(kwargs or {}))


def _build_spec_on_meta(spec: str, input_size: tuple[int, ...]) -> nn.Module:
    """Build a spec on meta; a too-small input names the layer and the smallest that works."""
    try:
        with _MetaBuild():
            return build_spec(spec, input_size=input_size)
    except GeometryError as error:

        def fits(side: int) -> bool:
            try:
                with _MetaBuild():
                    build_spec(spec, input_size=square_input(input_size, side))
            except GeometryError:
                return False
            return True

        smallest = smallest_square_input(fits, max(input_size[1:]))
        raise too_small_error(f"spec '{spec}'", input_size, str(error), smallest) from None


def resolve_model(
    source: nn.Module | str, input_size: tuple[int, ...] | None
) -> tuple[nn.Module, str, tuple[int, ...]]:
    """The module to size, its label and its input size, from a module, a name or a spec.

    A user's module comes back as it is; a registered name or a sequential spec is built on
    the meta device (see ``summary``'s ``input_size`` for how the size is chosen).

    Raises:
        ConfigError: a module without ``default_input_size`` and no ``input_size`` given, or an
            input with a different number of axes than the model's.
        GeometryError: the input is too small for the spec (names the smallest that works).
        UnknownNameError: neither a registered model nor a spec.
    """
    if isinstance(source, nn.Module):
        default = getattr(source, "default_input_size", None)
        if input_size is None and default is None:
            raise ConfigError(
                f"{type(source).__name__} has no default_input_size: pass input_size=(C, H, W)"
            )
        _check_rank(type(source).__name__, input_size, default)
        return source, type(source).__name__, tuple(input_size or default)
    name = source.strip()
    if looks_like_spec(name):  # no model name starts like a spec ("[", "conv3", "fc10", ...)
        size = tuple(input_size or DEFAULT_INPUT_SIZE)
        return _build_spec_on_meta(name, size), name, size
    entry = model_entry(name)  # an unknown name raises, suggesting the nearest names
    model = create_on_meta(entry.name)
    _check_rank(entry.name, input_size, model.default_input_size)
    if input_size is not None and input_size[0] != model.default_input_size[0]:
        model = create_on_meta(entry.name, in_chans=input_size[0])
    return model, entry.name, tuple(input_size or model.default_input_size)


def create_on_meta(name: str, **kwargs) -> nn.Module:
    """``create_model`` on the meta device, skipping weight initialisation: shapes only."""
    with _MetaBuild():
        return create_model(name, **kwargs)


def _check_rank(label: str, input_size, default) -> None:
    """An input with a different number of axes than the model's own cannot be meant."""
    if input_size is not None and default is not None and len(input_size) != len(default):
        raise ConfigError(
            f"{label} takes an input like {dims(tuple(default))} (channels first), "
            f"got {dims(tuple(input_size))}"
        )
