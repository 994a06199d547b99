"""Where a command may write without losing anything: a leaf, above ``errors`` only.

Every writer (pictures, pages, exported models) checks its output path here first, so an
``--out`` that names a run's checkpoint, the command's own input image, or a file the writer
cannot produce (a ``.txt`` picture) is one clear error before any work, not a lost file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cnnlab.errors import ConfigError, OutputPathError

#: what matplotlib writes, by file extension (the format follows the extension)
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps")
HTML_SUFFIXES = (".html", ".htm")
#: the files of a training run that ``resume``, ``evaluate`` and ``plot`` read back
RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.csv", "config.yaml")


def check_output(
    path: str | Path, suffixes: tuple[str, ...], what: str, inputs: Iterable[str | Path] = ()
) -> Path:
    """``path`` as a Path if ``what`` may be written there, else a one-line ``ConfigError``.

    Refused: an extension not in ``suffixes``; one of ``inputs`` (the command's own image or
    checkpoint); a file of a training run (``RUN_FILES`` beside a ``config.yaml``); a path
    that cannot be written (``check_output_path``).
    """
    path = check_output_path(path)
    if path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"cannot write {what} to '{path}': give a file name ending in {', '.join(suffixes)}"
        )
    target = path.resolve()
    if any(Path(source).resolve() == target for source in inputs):
        raise ConfigError(f"'{path}' is this command's input; write the {what} to another file")
    if path.name in RUN_FILES and (path.parent / "config.yaml").is_file():
        raise ConfigError(
            f"'{path}' belongs to the training run in '{path.parent}'; write the {what} to "
            "another file"
        )
    return path


def check_output_path(path: str | os.PathLike, *, directory: bool = False) -> Path:
    """Refuse, before any work is done, an output that cannot be written.

    ``path`` is a file to write (``directory=False``) or a directory to create or fill. It
    must not be the other kind of thing already, no parent of it may be a file, and the
    nearest existing parent must be writable. Nothing is created here.
    """
    path = Path(path).expanduser()
    what = "directory" if directory else "file"
    if directory and path.exists() and not path.is_dir():
        raise OutputPathError(f"output directory {path} is an existing file; choose another path")
    if not directory and path.is_dir():
        raise OutputPathError(f"output file {path} is an existing directory; name a file")
    parent = path if directory else path.parent
    existing = parent.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(
            f"cannot write the output {what} {path}: {existing} is a file, not a directory"
        )
    target = path if path.exists() else existing
    if not os.access(target, os.W_OK | (os.X_OK if target.is_dir() else 0)) or _pseudo(target):
        raise OutputPathError(
            f"cannot write the output {what} {path}: {target} is not writable; choose another path"
        )
    return path


def _pseudo(path: Path) -> bool:
    """Kernel pseudo-filesystems (/proc, /sys) pass ``os.access`` for root but take no files."""
    resolved = path.resolve()
    return any(resolved == Path(p) or Path(p) in resolved.parents for p in ("/proc", "/sys"))
