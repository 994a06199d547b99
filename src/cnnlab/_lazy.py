"""Lazy re-exports: a package names its public API without importing torch up front."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__`` (for the error message).
        exports: public name -> module that defines it, imported on first access.
        namespace: the package's ``globals()``, listed by ``dir()`` with the exports.
    """

    def __getattr__(name: str) -> object:
        if name in exports:
            module = importlib.import_module(exports[name])
            # a submodule named like its function (cnnlab.train) is itself callable: importing
            # it anywhere makes it the package attribute, so it must work as the function too
            return module if exports[name] == f"{package}.{name}" else getattr(module, name)
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__


class _CallableModule(types.ModuleType):
    """A module that, called, runs its function of the same name."""

    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Let ``cnnlab.train(...)`` and ``cnnlab.evaluate(...)`` call the function they export."""
    sys.modules[module_name].__class__ = _CallableModule
