"""Where a command may write its file without losing anything: a leaf, above ``errors`` only.

Every writer (pictures, pages, exported models) checks its output path here first, so an
``--out`` that names a run's checkpoint, the command's own input image, or a file the writer
cannot produce (a ``.txt`` picture) is one clear error before any work, not a lost file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cnnlab.errors import ConfigError

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
    checkpoint); a file of a training run (``RUN_FILES`` beside a ``config.yaml``).
    """
    path = Path(path)
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
