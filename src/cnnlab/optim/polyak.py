"""Momentum in the lectures' (Polyak 1964) form, and AlexNet's rule with weight decay inside it.

torch's SGD keeps ``b <- mu b + g; w <- w - lr b``, which scales the whole velocity by the
*current* learning rate; the lectures keep ``v <- alpha v - eta g; w <- w + v``, where past
steps keep the learning rate they were taken with. The two agree while the learning rate is
constant and differ as soon as a schedule changes it, hence this optimizer.
"""

from __future__ import annotations

import torch

from cnnlab.optim._objective import GuardBackward
from cnnlab.optim.registry import register_optimizer


class PolyakMomentum(torch.optim.Optimizer):
    """``v <- alpha v - eta (g + lambda w);  w <- w + v`` (lecture form of heavy-ball momentum).

    With ``weight_decay = lambda`` this is AlexNet's update
    ``v <- 0.9 v - 0.0005 eps w - eps g`` (Krizhevsky et al. 2012, section 5).

    Args:
        params: parameters or parameter groups.
        lr: ``eta``, the learning rate.
        momentum: ``alpha``, the velocity's decay.
        weight_decay: ``lambda``, the L2 coefficient, inside the velocity.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad(), GuardBackward("the optimizer"):
                loss = closure()
        for group in self.param_groups:
            lr, alpha, decay = group["lr"], group["momentum"], group["weight_decay"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                state = self.state[w]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(w)
                velocity = state["velocity"]
                velocity.mul_(alpha).add_(w.grad, alpha=-lr)
                if decay:
                    velocity.add_(w, alpha=-lr * decay)
                w.add_(velocity)
        return loss


@register_optimizer(
    "polyak",
    order=1,
    state="1x (velocity)",
    defaults={"lr": 0.01, "momentum": 0.9},
    source="cnnlab (lecture form)",
    summary="v <- a v - eta g; w <- w + v (velocity keeps past learning rates)",
)
def polyak(groups, lr, momentum):
    """Heavy-ball momentum exactly as the lectures write it."""
    return PolyakMomentum(groups, lr=lr, momentum=momentum)


@register_optimizer(
    "alexnet",
    order=1,
    state="1x (velocity)",
    defaults={"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005},
    source="cnnlab (AlexNet 2012)",
    summary="v <- 0.9 v - 0.0005 eps w - eps g; w <- w + v",
)
def alexnet(groups, lr, momentum):
    """AlexNet's momentum with the weight decay inside the velocity (decay from the groups)."""
    return PolyakMomentum(groups, lr=lr, momentum=momentum)
