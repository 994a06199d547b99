"""Every user mistake ends here: an exception whose message says what was wrong and what to do.

The command line prints a ``CnnlabError`` as one line and exits with status 2, never a
traceback, so the message must stand on its own.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CnnlabError(Exception):
    """A mistake the user can fix: the message says what was wrong and how to fix it."""


class UnknownNameError(CnnlabError, KeyError):
    """A name (model, optimizer, dataset, recipe, ...) that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class GeometryError(CnnlabError):
    """A convolution or pooling geometry that does not fit (input too small, bad stride)."""


class SpecError(CnnlabError):
    """A malformed sequential spec string."""


class DatasetError(CnnlabError):
    """A dataset that is missing, unreadable or of the wrong layout."""


class CheckpointError(CnnlabError):
    """A checkpoint that is truncated, foreign or incompatible."""


class ConfigError(CnnlabError):
    """A bad hyperparameter or option value."""


class TrainingDivergedError(CnnlabError):
    """Training produced a non-finite loss."""


def closest_names(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The registered names nearest to ``name``, best first (for "did you mean ...?")."""
    choices = list(choices)
    close = difflib.get_close_matches(name.lower(), choices, n=n, cutoff=0.5)
    if not close:
        close = [c for c in choices if name.lower() in c][:n]
    return close


def unknown_name(
    kind: str, name: str, choices: Iterable[str], listing_hint: str
) -> UnknownNameError:
    """Build the error for an unknown ``kind`` called ``name``, suggesting the nearest choices.

    ``listing_hint`` tells the user where the full list is, e.g. "run `cnnlab models`".
    """
    close = closest_names(name, choices)
    suggestion = f" Did you mean {' or '.join(close)}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} '{name}'.{suggestion} For the full list, {listing_hint}."
    )
