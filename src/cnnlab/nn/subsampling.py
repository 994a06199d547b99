"""LeNet-5's trainable subsampling and its scaled-tanh squashing function (LeCun et al. 1998).

Neither is in torch: the paper's S-layers are not average pooling (each map learns its own
gain and bias), and its squashing function is a tanh rescaled so that f(±1) = ±1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: LeCun et al. 1998, Appendix A: f(a) = A tanh(S a) with A = 1.7159 and S = 2/3.
LECUN_AMPLITUDE = 1.7159
LECUN_SLOPE = 2.0 / 3.0


class ScaledTanh(nn.Module):
    """The squashing function ``A * tanh(S * x)`` of LeCun et al. 1998, Appendix A.

    With A = 1.7159 and S = 2/3, f(1) = 1 and f(-1) = -1, the gain is close to 1 around the
    origin and the second derivative is largest at ±1, which is why the paper's targets
    (and the RBF templates) are ±1.
    """

    def __init__(self, amplitude: float = LECUN_AMPLITUDE, slope: float = LECUN_SLOPE) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4g}"


class TrainableSubsampling(nn.Module):
    """LeNet-5's S-layer: per map, ``coefficient * (sum of a k×k block) + bias``.

    The k×k blocks do not overlap (stride k). Each map has one trainable coefficient and one
    trainable bias, so the layer has ``2 * channels`` parameters (S2: 12, S4: 32). The paper
    passes the result through its squashing function; that is a separate :class:`ScaledTanh`
    so that summaries show both steps.

    Args:
        channels: number of feature maps (each gets its own coefficient and bias).
        kernel_size: side of the non-overlapping block that is summed (2 in the paper).
    """

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation; the fan-in is the k² summed inputs."""
        lecun_uniform_(self.weight, self.kernel_size**2)
        lecun_uniform_(self.bias, self.kernel_size**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        block_sum = F.avg_pool2d(x, k, stride=k) * (k * k)
        return block_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, stride={self.kernel_size}"

    def summary_note(self) -> str:
        k = self.kernel_size
        return f"sum of {k}x{k} block x coefficient + bias, per map"


def lecun_uniform_(tensor: torch.Tensor, fan_in: int) -> torch.Tensor:
    """LeCun et al. 1998's initialisation: uniform in ``±2.4 / fan_in`` (Appendix A).

    Keeps the weighted sums in the range where the scaled tanh is neither flat nor linear.
    """
    bound = 2.4 / max(fan_in, 1)
    return nn.init.uniform_(tensor, -bound, bound)
