"""Transfer learning: start from trained weights, freeze the early layers, train the rest.

The lecture's "fine-tune the last layers" case: with little data, the early layers' generic
edge and texture detectors are kept as they are and only the later layers (at least the new
classifier) learn. Frozen layers keep their weights and also their BatchNorm statistics: they
run in eval mode even while the rest of the network trains, otherwise a small new dataset
would overwrite the running means and variances the weights were trained with.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from cnnlab.errors import ConfigError, unknown_name


def init_weights_options(init_weights: str | None) -> dict[str, str]:
    """``create_model`` options for ``--init-weights``: a weights name, or an existing file."""
    if init_weights is None:
        return {}
    path = Path(init_weights).expanduser()
    if path.is_file():
        return {"weights_file": init_weights}
    if path.is_dir():
        raise ConfigError(
            f"--init-weights {init_weights} is a directory; give a weights file in it (e.g. a "
            "run's best.pt) or a weights name"
        )
    if "/" in init_weights or "\\" in init_weights or path.suffix.lower() in WEIGHT_SUFFIXES:
        raise ConfigError(
            f"--init-weights {init_weights}: no such file; give an existing weights file "
            "(e.g. a run's best.pt) or a weights name (see `cnnlab models`)"
        )
    return {"weights": init_weights}


# Names that are files, not weights names (IMAGENET1K_V1, DEFAULT, cifar10 have no suffix).
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".tar")


def _stay_in_eval(module: nn.Module, args) -> None:
    """Forward pre-hook of a frozen module: whatever ``model.train()`` said, run it in eval mode."""
    module.eval()


def freeze_until(model: nn.Module, layer: str) -> list[str]:
    """Freeze every parameter of ``layer`` and of the modules defined before it.

    "Before" is the order the model defines its modules in (``named_modules``), which for the
    zoo's networks is the order the input passes through them: ``freeze_until(resnet, "layer3")``
    freezes the stem and ``layer1`` to ``layer3`` and leaves ``layer4`` and ``fc`` to train.
    The frozen modules stay in eval mode during training (a forward pre-hook puts them back).

    Returns:
        The names of the frozen top-most modules, in order.

    Raises:
        UnknownNameError: ``layer`` is not a module of ``model`` (nearest names suggested).
    """
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        raise unknown_name(
            f"layer of {type(model).__name__}", layer, names, "run `cnnlab summary MODEL`"
        )
    modules = dict(model.named_modules())
    end = names.index(layer) + 1
    while end < len(names) and names[end].startswith(f"{layer}."):
        end += 1
    # everything up to the end of layer's subtree, but not the containers that hold layer
    # (freezing ``features`` whole would freeze past ``features.3``)
    chosen = [n for n in names[:end] if not layer.startswith(f"{n}.")]
    frozen = [n for n in chosen if not any(n.startswith(f"{top}.") for top in chosen)]
    for name in frozen:
        for parameter in modules[name].parameters():
            parameter.requires_grad_(False)
        modules[name].register_forward_pre_hook(_stay_in_eval)
    return frozen
