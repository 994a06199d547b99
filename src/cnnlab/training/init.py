"""Initialisations and freezes that the speedrun recipes switch on (any model can use them).

* Patch whitening (Jordan 2024, after Coates & Ng 2011): the first convolution's filters are set
  from the eigenvectors of the training patches' covariance, scaled so that its outputs are
  decorrelated with unit variance, and then frozen. The net starts from whitened inputs instead
  of learning the decorrelation, which saves epochs. torch has no such initialiser.
* Dirac (partial identity) initialisation: the first ``in_channels`` filters of each later
  convolution pass their input through unchanged (``torch.nn.init.dirac_``), so the untrained
  net starts close to a shallow one.
* Frozen BatchNorm scales: the scale stays 1 and only the shift is trained, as Jordan 2024;
  the following convolution can take over any scale.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.optim.registry import param_groups
from cnnlab.training.config import TrainConfig

WHITENING_IMAGES = 5000  # Jordan 2024 estimates the patch covariance from 5,000 images


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The model's first ``nn.Conv2d`` in module order (the one patch whitening initialises)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ConfigError("whitening initialisation needs a model with a convolution; this has none")


def patch_covariance(images: torch.Tensor, kernel_size: tuple[int, int]) -> torch.Tensor:
    """The second-moment matrix ``P^T P / n`` of every ``kernel_size`` patch of ``images``.

    On normalised (near zero-mean) images this is the patch covariance; like Jordan 2024 it is
    not centred, so the whitened outputs have unit second moment.
    """
    channels = images.shape[1]
    height, width = kernel_size
    patches = images.float().unfold(2, height, 1).unfold(3, width, 1)  # N C H' W' h w
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, channels * height * width)
    return patches.T @ patches / len(patches)


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set ``conv``'s filters to whiten ``images``' patches, and freeze them.

    With ``C = E diag(l) E^T`` the patch covariance, filter i is ``e_i / sqrt(l_i + eps)``
    (largest eigenvalue first), so the outputs on these patches have covariance
    ``diag(l / (l + eps))``, i.e. ~identity. A conv with twice as many filters as patch
    dimensions gets each filter and its negative (Jordan 2024: the GELU after it then keeps both
    signs of every whitened direction).

    Args:
        conv: a convolution with ``d`` or ``2 d`` filters, ``d = in_channels * kh * kw``.
        images: normalised training images ``[N, C, H, W]`` (Jordan uses 5,000).
        eps: added to the eigenvalues, to bound the gain on near-constant directions.
    """
    kernel = tuple(conv.weight.shape[2:])
    dims = conv.in_channels * kernel[0] * kernel[1]
    if conv.out_channels not in (dims, 2 * dims) or conv.groups != 1:
        raise ConfigError(
            f"whitening needs a first conv with {dims} or {2 * dims} filters "
            f"(in_channels x kernel area, or twice that), got {conv.out_channels}"
        )
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_covariance(images, kernel).double())
    order = eigenvalues.argsort(descending=True)
    filters = eigenvectors[:, order].T / torch.sqrt(eigenvalues[order, None] + eps)
    filters = filters.reshape(dims, conv.in_channels, *kernel)
    if conv.out_channels == 2 * dims:
        filters = torch.cat([filters, -filters])
    conv.weight.copy_(filters.to(conv.weight.dtype))
    conv.weight.requires_grad_(False)


@torch.no_grad()
def init_dirac(model: nn.Module, skip: nn.Module | None = None) -> int:
    """Partial identity init of every ungrouped, odd-kernel conv (except ``skip``).

    The first ``min(in, out)`` filters become identities (``torch.nn.init.dirac_``); the others
    keep their random initialisation. Returns how many convolutions were set.
    """
    count = 0
    for module in model.modules():
        if not isinstance(module, nn.Conv2d) or module is skip or module.groups != 1:
            continue
        if any(k % 2 == 0 for k in module.kernel_size):
            continue  # an even kernel has no centre tap to put the identity on
        nn.init.dirac_(module.weight[: module.in_channels])
        count += 1
    return count


def freeze_norm_weights(model: nn.Module) -> int:
    """Stop training the scales of every BatchNorm (they stay at their value, 1 when fresh).

    Returns how many were frozen. Call before the optimizer is built.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
            module.weight.requires_grad_(False)
            count += 1
    return count


def prepare_model(
    model: nn.Module, config: TrainConfig, training_images: Callable[[int], torch.Tensor]
) -> nn.Conv2d | None:
    """Apply the initialisations and freezes ``config`` asks for, before the optimizer is built.

    A run that starts from trained weights (``init_weights``) keeps them: the dirac and
    whitening initialisations are for fresh networks; the first conv is still frozen.

    Args:
        model: the freshly built model, already on its device and memory format.
        config: reads ``dirac_init``, ``whitening``, ``freeze_norm_weights``, ``init_weights``.
        training_images: ``training_images(n)`` returns n training images (a random
            sample), normalised, for the whitening (called only when ``config.whitening``).

    Returns:
        The whitened first convolution, or None.
    """
    whitened = first_conv(model) if config.whitening else None
    trained = config.init_weights is not None  # fine-tuning: the loaded weights are kept
    if config.dirac_init and not trained:
        init_dirac(model, skip=whitened)
    if whitened is not None and trained:
        whitened.weight.requires_grad_(False)  # trained whitening filters stay, frozen
    elif whitened is not None:
        init_whitening(whitened, training_images(WHITENING_IMAGES))
    if config.freeze_norm_weights:
        freeze_norm_weights(model)
    return whitened


def optimizer_groups(model: nn.Module, config: TrainConfig) -> nn.Module | list[dict]:
    """What to hand ``create_optimizer``: the model, or its groups with the BatchNorm shifts
    apart at ``norm_bias_lr_scale`` times the rate (:func:`apply_lr_scales` sets it).

    The shifts' weight decay is divided by the same factor, so their decay per step
    (rate x decay) stays the other weights' (Jordan 2024's ``wd / lr`` per group).
    """
    scale = config.norm_bias_lr_scale
    if scale == 1:
        return model
    shifts = {
        id(m.bias)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None
    }
    groups = []
    for group in param_groups(model, config.weight_decay, config.decay_norm_and_bias):
        rest = [p for p in group["params"] if id(p) not in shifts]
        moved = [p for p in group["params"] if id(p) in shifts]
        if rest:
            groups.append({**group, "params": rest})
        if moved:
            decay = group["weight_decay"] / scale
            groups.append({**group, "params": moved, "weight_decay": decay, "lr_scale": scale})
    return groups


def apply_lr_scales(optimizer: torch.optim.Optimizer) -> None:
    """Multiply each group's rate by its ``lr_scale``; call before building the scheduler."""
    for group in optimizer.param_groups:
        group["lr"] *= group.get("lr_scale", 1.0)
