"""Lookahead (Zhang et al. 2019) with Jordan 2024's decay schedule, around any optimizer.

Every ``every`` steps the slow weights move toward the fast (trained) ones and the fast ones are
reset to them::

    slow <- slow + (1 - d_t) (fast - slow);    fast <- slow

with ``d_t = decay ** every * (t / total) ** power`` (Jordan's airbench94: decay 0.95, every 5,
power 3): early in training ``d_t`` is ~0, so lookahead leaves the weights alone; near the end it
averages over the last few hundred steps, like an EMA whose weights the net keeps training from.
At the end of training the fast weights take the slow ones. Floating buffers (BatchNorm
statistics) are averaged along with the parameters, as airbench does.

torch has ``swa_utils.AveragedModel`` for an EMA that the net never sees; lookahead writes the
average back into the net, which that class does not do, hence this small class.
"""

from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    """Slow weights for ``model``, updated with :meth:`step` after each optimizer step.

    Args:
        model: the trained model (its floating parameters and buffers are averaged).
        total_steps: steps of the whole run (``t / total`` in the decay).
        decay: per-step decay (0.95); the slow weights' factor is ``decay ** every``.
        every: steps between synchronisations.
        power: exponent of the ramp ``(t / total) ** power``.
    """

    def __init__(
        self,
        model: nn.Module,
        total_steps: int,
        *,
        decay: float = 0.95,
        every: int = 5,
        power: float = 3.0,
    ):
        self.tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow = [t.detach().clone() for t in self.tensors]
        self.total_steps = max(1, total_steps)
        self.decay, self.every, self.power = decay, every, power

    def factor(self, step: int) -> float:
        """The slow weights' share ``d_t`` at global step ``step``."""
        return self.decay**self.every * (step / self.total_steps) ** self.power

    @torch.no_grad()
    def step(self, step: int) -> None:
        """Call after optimizer step number ``step`` (counted from 1)."""
        if step % self.every:
            return
        weight = 1 - self.factor(step)
        for slow, fast in zip(self.slow, self.tensors, strict=True):
            slow.lerp_(fast, weight)
            fast.copy_(slow)

    @torch.no_grad()
    def finish(self) -> None:
        """End of training: the model takes the slow weights."""
        for slow, fast in zip(self.slow, self.tensors, strict=True):
            fast.copy_(slow)

    def state_dict(self) -> dict:
        return {"slow": [t.clone() for t in self.slow]}

    def load_state_dict(self, state: dict) -> None:
        for slow, saved in zip(self.slow, state["slow"], strict=True):
            slow.copy_(saved)
