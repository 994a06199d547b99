"""Argument checks at the public boundary: one helper, one kind of message.

``create_model``, ``summary``, ``build_spec``, ``train``, ``create_optimizer`` and ``evaluate``
check their arguments here before any torch code sees them, so ``None``, a string where a
number belongs, a float where an int belongs or a value outside its meaning becomes one
``ConfigError`` naming the argument and what it accepts, instead of a torch traceback deep
inside (or, worse, a silently wrong result such as momentum 1.5 diverging). A leaf module: it
imports only ``cnnlab.errors``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Literal, Union

from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class _MaybeNone:
    """What every domain with an ``optional`` field shares: ``None`` passes only if optional,
    and the description then says so. Keyword-only, so each domain's own fields come first."""

    optional: bool = field(default=False, kw_only=True)
    or_none = " or None"

    def describe(self) -> str:
        return self._describe() + (self.or_none if self.optional else "")

    def accepts(self, value: Any) -> bool:
        return self.optional if value is None else self._accepts(value)

    def _describe(self) -> str:
        raise NotImplementedError

    def _accepts(self, value: Any) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Number(_MaybeNone):
    """A real (or, with ``integer``, whole) number in an interval; ``None`` only if ``optional``.

    ``low``/``high`` bound the interval, closed unless ``low_open``/``high_open``. Booleans are
    never numbers here (``True`` for a learning rate is a mistake, not 1.0).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def _describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low, high = self._shown(self.low), self._shown(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {high}"
        return kind if self.integer else "a finite number"

    def _shown(self, bound: float | None) -> str:
        """A bound as written: exact for an integer domain (2**64 - 1 is not 1.84467e+19)."""
        if bound is None:
            return ""
        if self.integer and isinstance(bound, Integral):
            return str(bound)
        return f"{bound:g}"

    def _accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, Integral if self.integer else Real):
            return False
        if not math.isfinite(float(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or not (
            value >= self.high if self.high_open else value > self.high
        )


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values (names, ``None``, ...)."""

    choices: tuple

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def accepts(self, value: Any) -> bool:
        # same type and equal: True is not 1, 1.0 is not 1, and unhashable values need no care
        return any(value is c or (type(value) is type(c) and value == c) for c in self.choices)


@dataclass(frozen=True)
class Flag(_MaybeNone):
    """``True`` or ``False`` (not 0, 1 or "yes": a mistyped flag should not pass silently)."""

    def _describe(self) -> str:
        return "True or False"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Items(_MaybeNone):
    """A list or tuple of values each accepted by ``item``: ``length`` of them, or at least
    ``min_length`` when ``length`` is ``None`` (Adam's ``betas``, an input size, milestones)."""

    item: Number
    length: int | None = None
    min_length: int = 1
    meaning: str = ""  # e.g. "(C, H, W)", said first
    or_none = ", or None"

    def _describe(self) -> str:
        count = {None: f"{self.min_length} or more ", 0: ""}.get(self.length, f"{self.length} ")
        if self.length is None and self.min_length == 0:
            count = ""
        text = f"a list of {count}values, each {self.item.describe()}"
        return f"{self.meaning}, {text}" if self.meaning else text

    def _accepts(self, value: Any) -> bool:
        if not isinstance(value, list | tuple):
            return False
        count_ok = len(value) == self.length if self.length else len(value) >= self.min_length
        return count_ok and all(self.item.accepts(v) for v in value)


@dataclass(frozen=True)
class Instance(_MaybeNone):
    """An instance of ``types`` (a model, a mapping of options, a path), described in words."""

    types: tuple[type, ...]
    description: str

    def _describe(self) -> str:
        return self.description

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)


@dataclass(frozen=True)
class Text(_MaybeNone):
    """A non-empty string (a model, dataset or optimizer name; the registry then checks it)."""

    def _describe(self) -> str:
        return "a non-empty string"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.strip() != ""


Domain = Number | OneOf | Flag | Items | Instance | Text

POSITIVE = Number(low=0, low_open=True)
NON_NEGATIVE = Number(low=0)
POSITIVE_INT = Number(low=1, integer=True)
FRACTION = Number(low=0, high=1, high_open=True)  # momentum, decay rates: [0, 1)
#: every random seed: torch.manual_seed takes at most 2**64 - 1, and a negative one is a typo
SEED = Number(low=0, high=2**64 - 1, integer=True)


def check(where: str, name: str, value: Any, domain: Domain) -> Any:
    """``value`` if ``domain`` accepts it, else a ``ConfigError`` naming ``where``'s ``name``."""
    if not domain.accepts(value):
        raise ConfigError(f"{where}: {name} must be {domain.describe()}, got {value!r}")
    return value


def check_all(where: str, values: Mapping[str, Any], domains: Mapping[str, Domain]) -> None:
    """Check every value whose name has a domain; names without one are left to the caller."""
    for name, value in values.items():
        if name in domains:
            check(where, name, value, domains[name])


def domain_of(hint: Any) -> Domain | None:
    """The domain a type annotation promises (``int``, ``float | None``, ``Literal[...]``,
    ``list[int]``, ``bool``, ``str``, ``dict``), or ``None`` for one it cannot check.

    Lets a dataclass or a builder's signature be checked from its annotations, so a new field
    or option is checked for its type without anyone writing a check for it.
    """
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(rest) < len(typing.get_args(hint))
        if len(rest) != 1:
            return None
        hint = rest[0]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    simple: dict[Any, Domain] = {
        bool: Flag(optional=optional),
        int: Number(integer=True, optional=optional),
        float: Number(optional=optional),
        str: Text(optional=optional),
    }
    if hint in simple:
        return simple[hint]
    if origin is Literal:
        return OneOf(args + ((None,) if optional else ()))
    if origin in (list, tuple) and args and args[0] in (int, float):
        return Items(Number(integer=args[0] is int), min_length=0, optional=optional)
    if hint is dict or origin is dict:
        return Instance((dict,), "a mapping of names to values", optional=optional)
    return None


def check_annotated(where: str, function_or_class: Callable | type, values: Mapping) -> None:
    """Check ``values`` against the annotations of a function's parameters or a dataclass."""
    try:
        hints = typing.get_type_hints(function_or_class)
    except (NameError, TypeError):  # annotations that cannot be resolved are not checked
        return
    for name, value in values.items():
        domain = domain_of(hints.get(name)) if name != "return" else None
        if domain is not None:
            check(where, name, value, domain)


def check_fields(where: str, instance: Any) -> None:
    """Check every field of a dataclass instance against its annotation."""
    values = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}
    check_annotated(where, type(instance), values)
