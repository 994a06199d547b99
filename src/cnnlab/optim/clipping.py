"""Gradient clipping, the lectures' remedy for the exploding gradients at a loss "cliff"."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from cnnlab.errors import ConfigError


def clip_gradients(
    params: Iterable[torch.Tensor] | torch.nn.Module,
    max_norm: float | None = None,
    max_value: float | None = None,
) -> torch.Tensor | None:
    """Clip the parameters' ``.grad`` in place: by total norm, by value, or both.

    Call it between ``backward()`` and ``optimizer.step()``, or at the end of a closure (after
    its ``backward()``): ``lbfgs``, ``bfgs`` and ``cg`` then line-search along the clipped
    gradient. ``newton`` and ``hessian_free`` take their gradient from the loss directly and
    bound their steps by damping and line search instead.

    Args:
        params: the parameters (or a model).
        max_norm: rescale all gradients together so their L2 norm is at most this
            (``torch.nn.utils.clip_grad_norm_``), keeping the gradient's direction.
        max_value: clamp each gradient element to ``[-max_value, max_value]``
            (``torch.nn.utils.clip_grad_value_``), which may change the direction.

    Returns:
        The total gradient norm before clipping when ``max_norm`` is given, else ``None``.
    """
    for name, limit in (("max_norm", max_norm), ("max_value", max_value)):
        if limit is not None and not limit > 0:
            raise ConfigError(f"gradient clipping {name} must be > 0, got {limit}")
    params = list(params.parameters() if isinstance(params, torch.nn.Module) else params)
    if max_value is not None:
        torch.nn.utils.clip_grad_value_(params, max_value)
    if max_norm is not None:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return None
