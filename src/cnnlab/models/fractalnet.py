"""FractalNet (Larsson et al. 2017): very deep nets without residuals, built by self-similarity.

The expansion rule (their Eq. 1-2) starts from one conv and doubles the depth at every step:

    f_1(z) = conv(z)
    f_{C+1}(z) = join(f_C(f_C(z)), conv(z))

with ``join`` the element-wise mean. A block with C columns therefore holds 2^C - 1 convs, its
deepest column 2^(C-1); column c (0 = shallowest) has 2^c. As in the paper's Fig. 1 and the
authors' released generator, nested joins that meet at the same depth are merged into one join
that averages all columns arriving there.

Drop-path regularises the columns against co-adaptation. Per mini-batch, with probability
``global_drop`` a *global* drop-path keeps a single column, chosen uniformly, in every block;
otherwise *local* drop-path lets each join drop each of its inputs with probability
``local_drop`` (0.15 in the paper), keeping at least one, independently per sample. At test time
the whole fractal runs, or only the deepest column (``deepest_column_only = True``), which the
paper shows is nearly as accurate (Table 1, "deepest column alone").

No residual branch is involved, so torchvision's ``StochasticDepth`` (which drops a branch added
to an identity) does not apply; the join below does the masked mean directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier

PAPER = "Larsson et al. 2017"

CIFAR_CHANNELS = (64, 128, 256, 512, 512)
PAPER_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)
"""Per-block dropout of the paper's CIFAR nets "with dropout" (Sec. 4.1)."""
PAPER_LOCAL_DROP = 0.15
PAPER_GLOBAL_DROP = 0.5


def fractal_join(inputs: Sequence[torch.Tensor], drop_prob: float = 0.0) -> torch.Tensor:
    """Mean of ``inputs``, each dropped per sample with probability ``drop_prob`` (local drop-path).

    A sample that would lose every input keeps one chosen uniformly, so the join never outputs
    nothing; the mean is taken over the inputs that survive.
    """
    if len(inputs) == 1:
        return inputs[0]
    stacked = torch.stack(list(inputs))
    if drop_prob <= 0.0:
        return stacked.mean(0)
    num_inputs, batch = stacked.shape[:2]
    keep = torch.rand(num_inputs, batch, device=stacked.device) >= drop_prob
    rescue = torch.randint(num_inputs, (batch,), device=stacked.device)
    keep[rescue, torch.arange(batch, device=stacked.device)] |= ~keep.any(0)
    weights = keep.to(stacked.dtype) / keep.sum(0)
    return (stacked * weights.view(num_inputs, batch, *([1] * (stacked.dim() - 2)))).sum(0)


def _conv_unit(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """3x3 conv, dropout, BN, ReLU: the order of the authors' released nets."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    dropout_layer = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(conv, *dropout_layer, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class FractalBlock(nn.Module):
    """f_C: ``num_columns`` columns of 3x3 conv units, joined wherever they meet.

    Column c runs one conv every 2^(C-1-c) steps of the deepest column, so after step t
    (1-based) the columns whose step divides t meet and are joined; at the last step all meet.
    """

    def __init__(
        self, num_columns: int, in_channels: int, out_channels: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if num_columns < 1:
            raise ConfigError(f"a fractal block needs at least 1 column, got {num_columns}.")
        self.num_columns = num_columns
        self.depth = 2 ** (num_columns - 1)
        self.columns = nn.ModuleList(
            nn.ModuleList(
                _conv_unit(in_channels if i == 0 else out_channels, out_channels, dropout)
                for i in range(2**c)
            )
            for c in range(num_columns)
        )

    def _step(self, column: int) -> int:
        """How many steps of the deepest column one conv of ``column`` spans."""
        return 2 ** (self.num_columns - 1 - column)

    def forward(
        self, x: torch.Tensor, column: int | None = None, local_drop: float = 0.0
    ) -> torch.Tensor:
        """The joined fractal, or only ``column``'s convs when a column is given."""
        if column is not None:
            for conv in self.columns[column]:
                x = conv(x)
            return x
        current = [x] * self.num_columns
        for t in range(1, self.depth + 1):
            meeting = [c for c in range(self.num_columns) if t % self._step(c) == 0]
            outputs = [self.columns[c][t // self._step(c) - 1](current[c]) for c in meeting]
            joined = fractal_join(outputs, local_drop)
            for c in meeting:
                current[c] = joined
        return current[-1]

    def summary_note(self) -> str:
        return f"C={self.num_columns}: {2**self.num_columns - 1} convs, deepest column {self.depth}"


class FractalNet(ImageClassifier):
    """B fractal blocks, each followed by 2x2 max-pooling, then a linear classifier.

    Args:
        num_columns: C, columns per block (depth of the deepest path: B * 2^(C-1)).
        channels: output channels of each block (B = ``len(channels)``).
        dropout: per-block dropout rates; ``True`` means the paper's (0, .1, .2, .3, .4).
        drop_path: train with local and global drop-path (off by default).
        local_drop: probability that a join drops one of its inputs (paper: 0.15).
        global_drop: share of mini-batches trained with global drop-path (paper: 0.5).
        num_classes: outputs of the classifier.
        in_chans: channels of the input image.
    """

    classifier_layers = ("fc",)

    def __init__(
        self,
        *,
        num_columns: int = 3,
        channels: Sequence[int] = CIFAR_CHANNELS,
        dropout: bool | Sequence[float] = False,
        drop_path: bool = False,
        local_drop: float = PAPER_LOCAL_DROP,
        global_drop: float = PAPER_GLOBAL_DROP,
        num_classes: int = 10,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        rates = _dropout_rates(dropout, len(channels))
        for name, p in (("local_drop", local_drop), ("global_drop", global_drop)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name}={p} is not a probability in [0, 1].")
        self.num_columns = num_columns
        self.drop_path = drop_path
        self.local_drop = local_drop
        self.global_drop = global_drop
        self.deepest_column_only = False
        in_channels = [in_chans, *channels[:-1]]
        self.blocks = nn.ModuleList(
            FractalBlock(num_columns, cin, cout, rate)
            for cin, cout, rate in zip(in_channels, channels, rates, strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        # 32x32 inputs reach 1x1 after five poolings; averaging keeps larger inputs usable.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[-1], num_classes)
        self.num_features = channels[-1]

    def _sample_paths(self) -> tuple[int | None, float]:
        """(global column or None, local drop probability) for this forward pass."""
        if self.deepest_column_only:
            return self.num_columns - 1, 0.0
        if not (self.training and self.drop_path):
            return None, 0.0
        # Drawn on the CPU: one decision per mini-batch, also when the model lives on "meta".
        if torch.rand((), device="cpu").item() < self.global_drop:
            return int(torch.randint(self.num_columns, (), device="cpu").item()), 0.0
        return None, self.local_drop

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        column, local_drop = self._sample_paths()
        for block in self.blocks:
            x = self.pool(block(x, column, local_drop))
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _dropout_rates(dropout: bool | Sequence[float], num_blocks: int) -> tuple[float, ...]:
    if isinstance(dropout, bool):
        if dropout and num_blocks != len(PAPER_DROPOUT):
            raise ConfigError(
                f"dropout=True means the paper's rates for 5 blocks, but there are {num_blocks}; "
                "pass one rate per block instead."
            )
        return PAPER_DROPOUT if dropout else (0.0,) * num_blocks
    rates = tuple(float(p) for p in dropout)
    if len(rates) != num_blocks or not all(0.0 <= p < 1.0 for p in rates):
        raise ConfigError(
            f"dropout={dropout!r}: give {num_blocks} rates in [0, 1), one per block, or True "
            "for the paper's (0, 0.1, 0.2, 0.3, 0.4)."
        )
    return rates


@register_model(input_size=(3, 32, 32))
def fractalnet20(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> FractalNet:
    """FractalNet-20 for CIFAR (Larsson et al. 2017, Sec. 4.1 and Table 1): B=5 blocks of
    C=3 columns, 64-128-256-512-512 channels, 20 conv layers on the deepest path."""
    return FractalNet(num_columns=3, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=(3, 32, 32))
def fractalnet40(*, num_classes: int = 10, in_chans: int = 3, **kwargs) -> FractalNet:
    """FractalNet-40 for CIFAR (Larsson et al. 2017, Fig. 1's C=4 block; the depth-40 net of the
    depth study, Table 3): B=5 blocks, 64-128-256-512-512 channels, 40 convs on the deepest path."""
    return FractalNet(num_columns=4, num_classes=num_classes, in_chans=in_chans, **kwargs)
