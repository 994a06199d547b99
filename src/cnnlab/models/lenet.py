"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition", Section II-B and Fig. 2), as published and in its common modern form.

The published network differs from today's retellings in four ways, all kept here:
trainable subsampling (S2, S4) instead of pooling, the scaled tanh ``1.7159 tanh(2/3 a)`` after
every layer up to F6, C3's partial connection table (Table I) and an output of Euclidean RBF
units against fixed 7×12 codes, trained with the MSE-to-code loss of eq. (8).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError, GeometryError
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.nn.rbf import EuclideanRBF, random_codes
from cnnlab.nn.subsampling import ScaledTanh, TrainableSubsampling, lecun_uniform_

PAPER = "LeCun et al. 1998"
INPUT_SIZE = (1, 32, 32)  # Section II-B: "The input is a 32x32 pixel image"

#: Table I of the paper: the S2 maps (columns 0-5) each C3 map (0-15) reads. Maps 0-5 take 3
#: contiguous maps, 6-11 take 4 contiguous, 12-14 take 4 discontinuous, 15 takes all 6. The
#: paper breaks the symmetry this way so that different maps are forced to learn different,
#: complementary features, and it keeps C3 at 1,516 parameters instead of 2,416.
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

#: Stylised 7×12 digit bitmaps for the RBF codes ("#" = +1, "." = -1). The paper's Fig. 3
#: draws its ASCII-set codes on a 7×12 grid; these digits are drawn in that style for cnnlab,
#: not copied pixel for pixel from the figure.
DIGIT_BITMAPS: tuple[str, ...] = (
    """
    .......
    ..###..
    .##.##.
    ##...##
    ##...##
    ##...##
    ##...##
    ##...##
    .##.##.
    ..###..
    .......
    .......
    """,
    """
    .......
    ...##..
    ..###..
    .####..
    ...##..
    ...##..
    ...##..
    ...##..
    ...##..
    .######
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    .....##
    ....##.
    ...##..
    ..##...
    .##....
    ##.....
    #######
    .......
    .......
    """,
    """
    .......
    ######.
    .....##
    .....##
    ..####.
    .....##
    .....##
    .....##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    ....##.
    ...###.
    ..####.
    .##.##.
    ##..##.
    #######
    ....##.
    ....##.
    ....##.
    .......
    .......
    """,
    """
    .......
    #######
    ##.....
    ##.....
    ######.
    .....##
    .....##
    .....##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    ..####.
    .##....
    ##.....
    ######.
    ##...##
    ##...##
    ##...##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    #######
    .....##
    ....##.
    ....##.
    ...##..
    ...##..
    ..##...
    ..##...
    ..##...
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    ##...##
    .#####.
    ##...##
    ##...##
    ##...##
    ##...##
    .#####.
    .......
    .......
    """,
    """
    .......
    .#####.
    ##...##
    ##...##
    ##...##
    .######
    .....##
    .....##
    ....##.
    .####..
    .......
    .......
    """,
)

BITMAP_HEIGHT, BITMAP_WIDTH = 12, 7
F6_UNITS = BITMAP_HEIGHT * BITMAP_WIDTH  # 84: F6 is as wide as one code


def digit_codes() -> torch.Tensor:
    """The ten digit codes as a ``(10, 84)`` tensor of ±1, row-major over the 7×12 bitmaps."""
    rows = []
    for bitmap in DIGIT_BITMAPS:
        lines = bitmap.split()
        if len(lines) != BITMAP_HEIGHT or any(len(line) != BITMAP_WIDTH for line in lines):
            raise ValueError("every digit bitmap must be 12 lines of 7 characters")
        rows.append([1.0 if pixel == "#" else -1.0 for line in lines for pixel in line])
    return torch.tensor(rows)


def output_codes(num_classes: int, seed: int = 0) -> torch.Tensor:
    """The RBF codes for ``num_classes`` classes.

    Ten classes get the digit bitmaps. Other class counts have no drawn templates, so they
    get random ±1 codes of the same length (84), reproducible from ``seed``; random codes of
    that length are far apart with high probability, which is all the RBF layer needs.
    """
    if num_classes == len(DIGIT_BITMAPS):
        return digit_codes()
    return random_codes(num_classes, F6_UNITS, seed=seed)


class ConnectionTableConv2d(nn.Module):
    """A convolution in which output map ``o`` reads only the input maps ``table[o]``.

    Only the connected kernels are parameters (C3: 60 kernels of 5×5 + 16 biases = 1,516,
    as in the paper). The forward scatters them into a dense, zero-filled weight and runs one
    ``conv2d``, which is faster than one small convolution per output map.

    Args:
        in_channels: number of input maps.
        table: for each output map, the indices of the input maps it reads.
        kernel_size: side of the square kernels.
    """

    def __init__(self, in_channels: int, table: Sequence[Sequence[int]], kernel_size: int) -> None:
        super().__init__()
        for out_index, inputs in enumerate(table):
            if not inputs or len(set(inputs)) != len(inputs):
                raise ConfigError(
                    f"connection table row {out_index} must list distinct input maps, got "
                    f"{tuple(inputs)}."
                )
            if not all(0 <= i < in_channels for i in inputs):
                raise ConfigError(
                    f"connection table row {out_index} reads maps {tuple(inputs)}, but there "
                    f"are only {in_channels} input maps (0..{in_channels - 1})."
                )
        self.in_channels = in_channels
        self.out_channels = len(table)
        self.kernel_size = kernel_size
        self.stride, self.padding = 1, 0  # a valid, stride-1 convolution (read by sizing)
        self.table = tuple(tuple(inputs) for inputs in table)
        connections = sum(len(inputs) for inputs in self.table)
        self.weight = nn.Parameter(torch.empty(connections, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        # Where each stored kernel sits in the dense (out * in) kernel grid. Persistent so
        # a model built on the meta device and then loaded from a state_dict is complete.
        flat = [o * in_channels + i for o, inputs in enumerate(self.table) for i in inputs]
        self.register_buffer("connection_index", torch.tensor(flat, dtype=torch.long))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """LeCun's uniform ±2.4/fan-in, the fan-in of each map being its own connections."""
        start = 0
        for out_index, inputs in enumerate(self.table):
            fan_in = len(inputs) * self.kernel_size**2
            with torch.no_grad():
                lecun_uniform_(self.weight[start : start + len(inputs)], fan_in)
                lecun_uniform_(self.bias[out_index : out_index + 1], fan_in)
            start += len(inputs)

    def dense_weight(self) -> torch.Tensor:
        """The ``(out, in, k, k)`` kernel with zeros where the table has no connection."""
        k = self.kernel_size
        dense = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        dense = dense.index_copy(0, self.connection_index, self.weight)
        return dense.view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.weight.shape[0]}/{self.in_channels * self.out_channels}"
        )

    def summary_note(self) -> str:
        connections = self.weight.shape[0]
        pairs = self.in_channels * self.out_channels
        per_pixel = connections * self.kernel_size**2
        return f"connection table: {connections} of {pairs} map pairs, {per_pixel} MACs/pixel"


class LeNet5(ImageClassifier):
    """C1 - S2 - C3 - S4 - C5 - F6 - output, configurable between the 1998 paper and today.

    Args:
        num_classes: output units.
        in_chans: input channels (1 in the paper).
        c3_connections: C3's connection table; ``None`` connects every S2 map to every C3 map.
        activation: builds the nonlinearity applied after C1, C3, C5 and F6 (and after the
            trainable subsampling layers).
        trainable_subsampling: the paper's S-layers (sum × coefficient + bias, then the
            activation) when True; 2×2 max-pooling when False.
        rbf_codes: ``(num_classes, 84)`` fixed codes for Euclidean RBF outputs (logits are
            the negative squared distances); ``None`` for a linear output layer.
        lecun_init: initialise weights uniformly in ±2.4/fan-in as the paper does; otherwise
            torch's defaults.
    """

    input_size = INPUT_SIZE[-1]
    classifier_layers = ("classifier.output",)

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 1,
        c3_connections: Sequence[Sequence[int]] | None = C3_CONNECTIONS,
        activation: Callable[[], nn.Module] = ScaledTanh,
        trainable_subsampling: bool = True,
        rbf_codes: torch.Tensor | None = None,
        lecun_init: bool = True,
    ) -> None:
        super().__init__()

        def subsample(name: str, channels: int) -> list[tuple[str, nn.Module]]:
            if trainable_subsampling:
                return [(name, TrainableSubsampling(channels)), (f"{name}_act", activation())]
            return [(name, nn.MaxPool2d(2))]

        c3: nn.Module = (
            nn.Conv2d(6, 16, 5)
            if c3_connections is None
            else ConnectionTableConv2d(6, c3_connections, 5)
        )
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("c1", nn.Conv2d(in_chans, 6, 5)),
                    ("c1_act", activation()),
                    *subsample("s2", 6),
                    ("c3", c3),
                    ("c3_act", activation()),
                    *subsample("s4", 16),
                    ("c5", nn.Conv2d(16, 120, 5)),
                    ("c5_act", activation()),
                ]
            )
        )
        if rbf_codes is not None and tuple(rbf_codes.shape) != (num_classes, F6_UNITS):
            raise ConfigError(
                f"rbf_codes must have shape ({num_classes}, {F6_UNITS}), one code per class, "
                f"got {tuple(rbf_codes.shape)}."
            )
        output = nn.Linear(F6_UNITS, num_classes) if rbf_codes is None else EuclideanRBF(rbf_codes)
        self.num_features = 120  # C5's maps
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten()),
                    ("f6", nn.Linear(120, F6_UNITS)),
                    ("f6_act", activation()),
                    ("output", output),
                ]
            )
        )
        if lecun_init:
            for module in self.modules():
                if isinstance(module, nn.Conv2d | nn.Linear):
                    fan_in = module.weight[0].numel()
                    lecun_uniform_(module.weight, fan_in)
                    lecun_uniform_(module.bias, fan_in)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise GeometryError(
                f"LeNet-5 takes {self.input_size}x{self.input_size} images (C5 is a 5x5 "
                f"convolution over 5x5 maps), got {x.shape[-2]}x{x.shape[-1]}; pad or resize "
                f"the images to {self.input_size}x{self.input_size} (MNIST: pad 28x28 by 2)."
            )
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def reset_classifier(self, num_classes: int) -> None:
        """A new output layer of ``num_classes``; RBF outputs get :func:`output_codes` (seed 0)."""
        output = self.classifier.output
        if not isinstance(output, EuclideanRBF):
            super().reset_classifier(num_classes)
            return
        self.classifier.output = EuclideanRBF(output_codes(num_classes).to(output.centers.device))


@register_model(
    input_size=INPUT_SIZE, paper=PAPER, default_loss="lenet_rbf", recipes=("lenet1998",)
)
def lenet5(*, num_classes: int = 10, in_chans: int = 1, code_seed: int = 0, **kwargs) -> LeNet5:
    """LeNet-5 as published: LeCun et al. 1998, Section II-B, Fig. 2 and Table I.

    Trainable subsampling, scaled tanh, C3's partial connections and Euclidean RBF outputs:
    60,000 trainable parameters. The logits are the negative squared distances to the class
    codes; train it with the ``lenet_rbf`` loss (eq. 8, :func:`cnnlab.nn.rbf.rbf_mse_loss`).
    Ten classes use the 7×12 digit codes; other class counts use random ±1 codes drawn
    from ``code_seed``.
    """
    model = LeNet5(
        num_classes=num_classes,
        in_chans=in_chans,
        rbf_codes=output_codes(num_classes, seed=code_seed),
        **kwargs,
    )
    return model


@register_model(input_size=INPUT_SIZE, paper=PAPER)
def lenet5_modern(*, num_classes: int = 10, in_chans: int = 1, **kwargs) -> LeNet5:
    """LeNet-5 as usually rebuilt today (layer sizes of LeCun et al. 1998, Fig. 2).

    ReLU, 2×2 max-pooling, a fully connected C3 and a linear output layer trained with
    cross-entropy: 61,706 parameters.
    """
    kwargs = {
        "c3_connections": None,
        "activation": nn.ReLU,
        "trainable_subsampling": False,
        "lecun_init": False,
        **kwargs,
    }
    return LeNet5(num_classes=num_classes, in_chans=in_chans, **kwargs)
