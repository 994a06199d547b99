"""Checkpoints: written atomically, loaded without running code.

A checkpoint is a plain dict of tensors and Python values, saved with ``torch.save`` to a
temporary file in the same directory and renamed over the old one (``os.replace`` is atomic
on POSIX and Windows), so a run killed at any moment leaves either the previous checkpoint or
the new one, never half a file. Loading uses ``torch.load(weights_only=True)``: a checkpoint
cannot execute code, and a truncated or foreign file is reported in one line.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CheckpointError

#: what each required entry holds, as ``train`` writes it
_ENTRY_TYPES = (
    ("model", dict, "the weights (a state dict)"),
    ("model_name", str, "the model's name"),
    ("model_kwargs", dict, "a mapping of the model's options"),
    ("config", (dict, type(None)), "a mapping of the training settings"),
    ("epoch", int, "a whole number of epochs"),
    ("step", int, "a whole number of steps"),
)
REQUIRED_KEYS = tuple(key for key, _, _ in _ENTRY_TYPES)
# What to do about a checkpoint whose weights do not fit the model its own settings build.
DAMAGED = "the checkpoint is damaged or was edited: use the run's best.pt or an earlier copy"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a cnnlab checkpoint safely.

    A directory is taken as a run directory (its ``checkpoint.pt``).

    Raises:
        CheckpointError: the file is missing, truncated, not a torch file, holds objects other
            than tensors and plain values, or is not a cnnlab checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; pass a .pt file or a run directory")
    from cnnlab.models.weights import read_torch_file

    state = read_torch_file(
        path,
        map_location,
        kind="torch checkpoint",
        remedy="use the run's best.pt or an earlier copy, or train again",
    )
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a cnnlab checkpoint (it lacks {', '.join(missing)})")
    for key, kinds, what in _ENTRY_TYPES:  # an edited entry fails here, not deep in a command
        if not isinstance(state[key], kinds) or isinstance(state[key], bool):
            raise CheckpointError(
                f"{path}: its '{key}' entry should be {what}, but is a "
                f"{type(state[key]).__name__}; {DAMAGED}"
            )
    return state


def model_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, use_ema: bool = False
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as, with its weights, in eval mode.

    Args:
        path: a checkpoint file or a run directory.
        device: where to put the model.
        use_ema: load the exponential-moving-average weights instead (the checkpoint must have
            been trained with ``--ema``).

    Returns:
        ``(model, checkpoint)``.
    """
    from cnnlab.models import create_model

    state = load_checkpoint(path)
    model = create_model(state["model_name"], **state["model_kwargs"])
    weights = state["model"]
    if use_ema:
        if not state.get("ema"):
            raise CheckpointError(f"{path} has no EMA weights; train with --ema DECAY")
        prefix = "module."
        weights = {k[len(prefix) :]: v for k, v in state["ema"].items() if k.startswith(prefix)}
    from cnnlab.models.weights import load_state

    load_state(model, weights, str(path), label=f"model '{state['model_name']}'", remedy=DAMAGED)
    return model.to(device).eval(), state


def rng_states() -> dict[str, Any]:
    """Every random generator the training loop draws from (torch, CUDA, numpy, random)."""
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state_to_plain(np.random.get_state()),
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what ``rng_states`` captured."""
    torch.set_rng_state(states["torch"])
    np.random.set_state(_numpy_state_from_plain(states["numpy"]))
    random.setstate(_python_state_from_plain(states["python"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# weights_only loading accepts tensors and plain containers, so the generators' states are
# stored as tensors and lists rather than numpy arrays and tuples.
def _numpy_state_to_plain(state) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = state
    return {
        "kind": kind,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _numpy_state_from_plain(state: dict[str, Any]):
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["kind"], keys, state["pos"], state["has_gauss"], state["cached"])


def _python_state_to_plain(state) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": version, "internal": list(internal), "gauss": gauss}


def _python_state_from_plain(state: dict[str, Any]):
    return (state["version"], tuple(state["internal"]), state["gauss"])
