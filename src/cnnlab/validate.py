"""Argument checks at the public boundary: one helper, one kind of message.

``create_model``, ``summary``, ``build_spec``, ``train``, ``create_optimizer`` and ``evaluate``
check their arguments here before any torch code sees them, so ``None``, a string where a
number belongs, a float where an int belongs or a value outside its meaning becomes one
``ConfigError`` naming the argument and what it accepts, instead of a torch traceback deep
inside (or, worse, a silently wrong result such as momentum 1.5 diverging). A leaf module: it
imports only ``cnnlab.errors``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class Number:
    """A real (or, with ``integer``, whole) number in an interval; ``None`` only if ``optional``.

    ``low``/``high`` bound the interval, closed unless ``low_open``/``high_open``. Booleans are
    never numbers here (``True`` for a learning rate is a mistake, not 1.0).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"{kind} in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        else:
            text = f"a finite {kind.split()[-1]}"
        return f"{text} or None" if self.optional else text

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
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
class Flag:
    """``True`` or ``False`` (not 0, 1 or "yes": a mistyped flag should not pass silently)."""

    optional: bool = False

    def describe(self) -> str:
        return "True or False" + (" or None" if self.optional else "")

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool) or (value is None and self.optional)


@dataclass(frozen=True)
class Pair:
    """Two numbers, each accepted by ``item`` (Adam's ``betas``)."""

    item: Number

    def describe(self) -> str:
        return f"a pair of numbers, each {self.item.describe()}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            return False
        values = list(value)
        return len(values) == 2 and all(self.item.accepts(v) for v in values)


@dataclass(frozen=True)
class Sizes:
    """A sequence of ``length`` integers (``None``: any length >= 1), each at least ``low``."""

    length: int | None = None
    low: int = 1
    optional: bool = False

    def describe(self) -> str:
        count = f"{self.length} integers" if self.length else "integers"
        return f"{count}, each >= {self.low}" + (" or None" if self.optional else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            return False
        values = list(value)
        number = Number(low=self.low, integer=True)
        return (len(values) == self.length if self.length else len(values) >= 1) and all(
            number.accepts(v) for v in values
        )


@dataclass(frozen=True)
class Text:
    """A non-empty string (a model, dataset or optimizer name; the registry then checks it)."""

    optional: bool = False

    def describe(self) -> str:
        return "a non-empty string" + (" or None" if self.optional else "")

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, str) and value.strip() != "") or (value is None and self.optional)


Domain = Number | OneOf | Flag | Pair | Sizes | Text

POSITIVE = Number(low=0, low_open=True)
NON_NEGATIVE = Number(low=0)
POSITIVE_INT = Number(low=1, integer=True)
FRACTION = Number(low=0, high=1, high_open=True)  # momentum, decay rates: [0, 1)


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
