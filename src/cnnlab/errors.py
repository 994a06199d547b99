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


class ExportError(CnnlabError):
    """A model that cannot be exported, or whose exported copy disagrees with PyTorch."""


class RunInUseError(CnnlabError):
    """A run directory that another live process is training into."""


class OutputPathError(CnnlabError):
    """An output path that cannot be written (an existing file, under a file, no permission)."""


def read_problem(error: BaseException) -> str:
    """One line for a file that could not be read or parsed: a YAML error's line, column and
    problem (its multi-line excerpt of the file left out), an OSError's reason."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"YAML syntax error at {where}: {problem}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return " ".join(str(error).split())


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
    shown = name.encode("unicode_escape").decode("ascii")  # a newline in it stays on the line
    return UnknownNameError(
        f"unknown {kind} '{shown}'.{suggestion} For the full list, {listing_hint}."
    )
