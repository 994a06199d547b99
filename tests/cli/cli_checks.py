"""What the command-line tests share: the tiny training arguments and the check of a refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY = ("--epochs", "1", "--batch-size", "128", "--threads", "1")


def one_line_error(result) -> str:
    """The single stderr line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_digit_png(path: Path) -> Path:
    """A 32x32 grey PNG of a vertical bar, a digit '1' as the digits dataset draws it."""
    pixels = np.zeros((32, 32), np.uint8)
    pixels[6:26, 14:18] = 255
    Image.fromarray(pixels).save(path)
    return path
