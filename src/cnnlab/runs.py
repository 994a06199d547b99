"""Training runs as users start them: the engine, with ``curves.png`` redrawn every epoch.

The engine (``cnnlab.training``) sits below the pictures (``cnnlab.viz``) and cannot draw,
so this module, above both, hands it the curve drawing as its epoch-end hook. ``cnnlab.train``
and ``cnnlab train`` run through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.training import engine
from cnnlab.training.config import TrainConfig
from cnnlab.viz.curves import redraw_run_curves


def train(config: TrainConfig | None = None, *, console=None, **options: Any) -> engine.RunResult:
    """Train a model and keep its ``curves.png`` up to date; the same as ``cnnlab train``.

    Takes what :func:`cnnlab.training.train` takes: a ``TrainConfig``, or ``model=``,
    ``recipe=`` and any ``TrainConfig`` field as keyword options.
    """
    return engine.train(config, console=console, on_epoch_end=redraw_run_curves, **options)


def resume(run_dir: str | Path, **options: Any) -> engine.RunResult:
    """Continue a run and keep its ``curves.png`` up to date; the same as ``cnnlab resume``.

    Takes what :func:`cnnlab.training.resume` takes (``epochs=``, ``device=``, ``data_dir=``,
    ``console=``).
    """
    return engine.resume(run_dir, on_epoch_end=redraw_run_curves, **options)
