"""Stochastic depth (Huang et al. 2016): residual branches dropped at random while training.

Notation. Huang et al. give each residual block l = 1..L a *survival* probability p_l that decays
linearly from p_0 = 1 at the input to p_L at the last block (their Eq. 4):

    p_l = 1 - l / L * (1 - p_L)

torchvision's ``StochasticDepth(p)`` takes the opposite number, the *drop* probability 1 - p_l.
cnnlab's models take ``drop_path``: the drop probability of the *last* block, 1 - p_L, the same
convention as torchvision's ``p``. The paper's default p_L = 0.5 is therefore ``drop_path=0.5``;
``drop_path=True`` is accepted as a shorthand for it, and 0 / False switches stochastic depth off.

The dropping itself is torchvision's ``StochasticDepth`` in ``"row"`` mode (one draw per sample):
a kept branch is scaled by 1 / p_l while training, so the network is used unchanged at inference
(the paper scales by p_l at test time instead, which is the same in expectation).
"""

from __future__ import annotations

import numbers

from torchvision.ops import StochasticDepth

from cnnlab.errors import ConfigError

PAPER_FINAL_SURVIVAL = 0.5
"""p_L used throughout Huang et al. 2016 (Sec. 4): the last block survives half of the time."""


def resolve_drop_path(drop_path: float | bool) -> float:
    """The drop probability of the last block, 1 - p_L, from a model's ``drop_path`` argument.

    Args:
        drop_path: a probability in [0, 1), or ``True`` for the paper's p_L = 0.5
            (drop probability 0.5), or ``False`` for none.

    Raises:
        ConfigError: when ``drop_path`` is not a probability below 1.
    """
    if isinstance(drop_path, bool):
        return 1.0 - PAPER_FINAL_SURVIVAL if drop_path else 0.0
    if not isinstance(drop_path, numbers.Real) or not 0.0 <= float(drop_path) < 1.0:
        raise ConfigError(
            f"drop_path={drop_path!r} is not a drop probability in [0, 1): pass the drop "
            "probability of the last residual block, 1 - p_L (0.5 is the paper's default, "
            "0 turns stochastic depth off)."
        )
    return float(drop_path)


def survival_probabilities(num_blocks: int, final_survival: float) -> list[float]:
    """Huang et al.'s linear decay rule: p_l = 1 - l/L (1 - p_L) for blocks l = 1..L.

    Args:
        num_blocks: L, the number of residual blocks.
        final_survival: p_L, the survival probability of the last block.
    """
    return [1.0 - l / num_blocks * (1.0 - final_survival) for l in range(1, num_blocks + 1)]


def drop_probabilities(num_blocks: int, drop_path: float | bool) -> list[float]:
    """Per-block drop probabilities 1 - p_l for a model built with ``drop_path``.

    The first block is dropped least (1/L of ``drop_path``), the last exactly ``drop_path``.
    """
    final_drop = resolve_drop_path(drop_path)
    return [1.0 - p for p in survival_probabilities(num_blocks, 1.0 - final_drop)]


class DropPath(StochasticDepth):
    """Drops a residual branch per sample with probability ``p`` while training.

    torchvision's ``StochasticDepth`` fixed to ``"row"`` mode; identity in eval mode and when
    ``p == 0``. It has no parameters, so adding it leaves a model's state_dict unchanged.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__(p, mode="row")

    def summary_note(self) -> str:
        return f"stochastic depth: survival p_l = {1.0 - self.p:.3g}"
