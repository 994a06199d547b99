"""Muon for convolutional nets: conv filters orthogonalised as matrices, the rest on SGD.

Muon (Jordan 2024) replaces each weight matrix's momentum update by its nearest semi-orthogonal
matrix (a few Newton-Schulz iterations), which equalises the update over all directions; on
CIFAR-10 airbench it needs 8 epochs at batch 2000 where SGD needs 9.9 at 1024. Jordan applies it
to conv filters viewed as ``[out, in * kh * kw]`` matrices, renormalises every filter bank to
norm ``sqrt(out)`` before each step (the nets are scale-invariant behind BatchNorm, so the
update's size relative to the weights then stays fixed), and trains the remaining parameters
(BatchNorm shifts, the linear head, the whitening bias) with SGD and Nesterov momentum.

torch 2.14's ``torch.optim.Muon`` accepts 2-D parameters only, has no SGD part, and always
orthogonalises in bf16, which a CPU without native bf16 (AVX2 only) emulates 15 to 30 times
slower than float32: on such a CPU it took a third of the speedrun's step (BENCHMARKS.md). So
:class:`Muon` here keeps both kinds in one optimizer (one set of param groups for the
schedulers and checkpoints), does torch's matrix update itself on 2-D views of the filters, in
bf16 where the parameters' device has it natively (the same numbers as torch's) and in float32
elsewhere, and delegates the other groups to ``torch.optim.SGD``, sharing this optimizer's
state. The views follow the filters' memory layout (``[out, kh * kw * in]`` for channels_last):
orthogonalisation is equivariant to permuting columns, so the update is the same as Jordan's
``[out, in * kh * kw]`` flattening, with no copy. torch's momentum is an EMA (``lerp``) where
Jordan's is a sum; the two differ by a constant factor that the orthogonalisation removes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache

import torch

from cnnlab.errors import ConfigError
from cnnlab.machine import bf16_supported
from cnnlab.optim._objective import hyperparameters
from cnnlab.optim.registry import register_optimizer

#: Jordan's quintic Newton-Schulz coefficients, and the norm floor: torch.optim.Muon's defaults
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7


@cache
def orthogonalization_dtype(device: torch.device) -> torch.dtype:
    """bf16 where ``device`` computes it natively (as torch and Jordan do), float32 elsewhere."""
    return torch.bfloat16 if bf16_supported(device) else torch.float32


def orthogonalize(matrix: torch.Tensor, steps: int, dtype: torch.dtype) -> torch.Tensor:
    """``steps`` Newton-Schulz iterations towards the semi-orthogonal factor ``U V^T`` of
    ``matrix = U S V^T``, computed in ``dtype``: torch.optim.Muon's iteration (whose result is
    ``U S' V^T`` with ``S'`` roughly between 0.5 and 1.5), with the precision left to the caller.
    """
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=NS_EPS)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def as_matrix(tensor: torch.Tensor) -> torch.Tensor:
    """A 2-D view ``[out, -1]`` of a filter bank in its memory order (no copy)."""
    flat = tensor.detach()
    if not flat.is_contiguous() and flat.dim() == 4:
        if flat.is_contiguous(memory_format=torch.channels_last):
            flat = flat.permute(0, 2, 3, 1)
    if not flat.is_contiguous():
        raise ConfigError(
            f"Muon needs contiguous or channels_last filters, got strides {tensor.stride()}"
        )
    return flat.view(flat.shape[0], -1)


class Muon(torch.optim.Optimizer):
    """Orthogonalised momentum for groups with ``orthogonalize=True``, SGD for the others.

    Args:
        params: parameters or groups; a group may set any of the options below.
        lr: learning rate.
        momentum: momentum (Muon groups: torch's EMA form; SGD groups: torch's SGD form).
        nesterov: Nesterov momentum.
        weight_decay: Muon groups: torch's decoupled decay; SGD groups: L2 added to the gradient.
        ns_steps: Newton-Schulz iterations of the orthogonalisation.
        normalize: rescale each Muon-group tensor to Frobenius norm ``sqrt(out)`` before its
            step (Jordan 2024).
        orthogonalize: whether a group is updated by Muon (tensors of 2 or more dimensions) or
            by SGD.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
        normalize: bool = True,
        orthogonalize: bool = True,
    ):
        super().__init__(params, hyperparameters(locals()))
        for group in self.param_groups:
            flat = [p for p in group["params"] if p.dim() < 2]
            if group["orthogonalize"] and flat:
                raise ConfigError(
                    f"Muon orthogonalises matrices and filters, not {flat[0].dim()}-D tensors; "
                    "put biases and norm parameters in a group with orthogonalize=False"
                )

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every group; ``closure`` re-evaluates the loss (optional)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if group["orthogonalize"]:
                self._muon_step(group, params)
            else:
                self._sgd_step(group, params)
        return loss

    def _muon_step(self, group: dict, params: list[torch.Tensor]) -> None:
        """torch.optim.Muon's update (EMA momentum, Nesterov, lr scaled by ``sqrt(max(1,
        rows / cols))``, decoupled decay) on each filter bank's 2-D view."""
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        for p in params:
            if group["normalize"]:
                p.mul_(math.sqrt(p.shape[0]) / p.norm().clamp(min=1e-12))
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            grad = p.grad
            if grad.stride() != p.stride():  # a gradient set by hand in another layout
                grad = torch.empty_like(p).copy_(grad)
            weights, grad = as_matrix(p), as_matrix(grad)
            buffer = as_matrix(state["momentum_buffer"]).lerp_(grad, 1 - momentum)
            update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
            update = orthogonalize(update, group["ns_steps"], orthogonalization_dtype(p.device))
            rows, cols = weights.shape
            weights.mul_(1 - lr * decay)
            weights.add_(update, alpha=-lr * math.sqrt(max(1, rows / cols)))

    def _sgd_step(self, group: dict, params: list[torch.Tensor]) -> None:
        inner = torch.optim.SGD(
            params,
            lr=group["lr"],
            momentum=group["momentum"],
            nesterov=group["nesterov"] and group["momentum"] > 0,
            weight_decay=group["weight_decay"],
        )
        for p in params:
            inner.state[p] = self.state[p]  # the same dict: SGD's buffer lands in our state
        inner.step()


@register_optimizer(
    "muon",
    order=1,
    state="1x (momentum)",
    defaults={
        "lr": 0.24,
        "momentum": 0.6,
        "sgd_lr": 1.6,
        "sgd_momentum": 0.85,
        "ns_steps": 5,
        "normalize": True,
    },
    source="torch.optim.Muon's update on 2-D filter views + torch.optim.SGD (Jordan 2024)",
    summary="filters: theta <- theta - eps orth(m); others: SGD Nesterov at sgd_lr",
)
def muon(groups, lr, momentum, sgd_lr, sgd_momentum, ns_steps, normalize):
    """Jordan's CIFAR Muon: 4-D conv filters on Muon (``lr``, ``momentum``), everything else
    (biases, BatchNorm, linear layers) on SGD with Nesterov momentum (``sgd_lr``,
    ``sgd_momentum``), as airbench does. The defaults are Jordan's, in cnnlab's mean-loss units
    (his ``sum`` loss's SGD rates times the batch, with the speedrun net's 1/9 logit scale).

    Renormalised filters keep their norm whatever the decay, so they take no weight decay.
    """
    if not (isinstance(ns_steps, int) and ns_steps >= 1):
        raise ConfigError(f"optimizer 'muon': ns_steps must be an integer >= 1, got {ns_steps}")
    if not (isinstance(sgd_lr, (int, float)) and sgd_lr > 0):
        raise ConfigError(f"optimizer 'muon': sgd_lr must be > 0, got {sgd_lr}")
    if not (isinstance(sgd_momentum, (int, float)) and 0 <= sgd_momentum < 1):
        raise ConfigError(f"optimizer 'muon': sgd_momentum must be in [0, 1), got {sgd_momentum}")
    split = []
    for group in groups:
        filters = [p for p in group["params"] if p.dim() == 4]
        others = [p for p in group["params"] if p.dim() != 4]
        if filters:
            decay = 0.0 if normalize else group.get("weight_decay", 0.0)
            split.append({**group, "params": filters, "weight_decay": decay})
        if others:
            split.append(
                {
                    **group,
                    "params": others,
                    "orthogonalize": False,
                    "lr": sgd_lr,
                    "momentum": sgd_momentum,
                }
            )
    return Muon(split, lr=lr, momentum=momentum, ns_steps=ns_steps, normalize=normalize)
