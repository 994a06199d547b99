"""SqueezeNet (Iandola et al. 2016): AlexNet-level accuracy with 50× fewer parameters.

Its Fire module squeezes the input through a few 1×1 filters, then expands with a mix of 1×1
and 3×3 filters: fewer input channels to the 3×3 filters and fewer 3×3 filters mean fewer
parameters. Pooling comes late so that most layers see large activation maps, and a 1×1
convolution with global average pooling replaces the fully connected classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import unknown_name
from cnnlab.models._registry import register_model
from cnnlab.nn.classifier import ImageClassifier

PAPER = "Iandola et al. 2016"
INPUT_SIZE = (3, 227, 227)  # the crop of the released Caffe model (see squeezenet1_0)

MAX_POOL = "M"
"""A 3×3 stride-2 max pool (ceil mode, as in the Caffe model) in a layer layout."""

LAYOUTS: dict[str, tuple[int, int, list]] = {
    # First conv width and kernel (stride 2), then max pools and Fire modules as
    # (squeeze 1×1, expand 1×1 = expand 3×3) widths.
    # 1.0: the paper's Table 1 (fire2 … fire9).
    "1_0": (
        96,
        7,
        [MAX_POOL, (16, 64), (16, 64), (32, 128), MAX_POOL, (32, 128), (48, 192), (48, 192)]
        + [(64, 256), MAX_POOL, (64, 256)],
    ),
    # 1.1: the authors' release (3×3 first conv, pools moved earlier): 2.4× less computation.
    "1_1": (
        64,
        3,
        [MAX_POOL, (16, 64), (16, 64), MAX_POOL, (32, 128), (32, 128), MAX_POOL, (48, 192)]
        + [(48, 192), (64, 256), (64, 256)],
    ),
}


class Fire(nn.Module):
    """Squeeze with 1×1 filters, then expand with 1×1 and 3×3 filters side by side (Figure 1)."""

    def __init__(
        self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int
    ) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.out_channels = expand1x1_planes + expand3x3_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(x)),
                self.expand3x3_activation(self.expand3x3(x)),
            ],
            dim=1,
        )

    def summary_note(self) -> str:
        """The squeeze ratio, shown by ``cnnlab summary`` next to this module."""
        return (
            f"squeeze {self.squeeze.out_channels} -> expand {self.expand1x1.out_channels} 1x1 "
            f"+ {self.expand3x3.out_channels} 3x3"
        )


class SqueezeNet(ImageClassifier):
    """SqueezeNet 1.0 or 1.1, with torchvision's layer indices so its state dict loads unchanged.

    Args:
        version: ``"1_0"`` or ``"1_1"`` (a key of :data:`LAYOUTS`).
        num_classes: classifier outputs.
        in_chans: input image channels.
        dropout: dropout before the final 1×1 convolution (the paper's 50% after fire9).
    """

    def __init__(
        self, version: str, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5
    ) -> None:
        super().__init__()
        if version not in LAYOUTS:
            raise unknown_name(
                "SqueezeNet version", version, LAYOUTS, "see cnnlab.models.squeezenet.LAYOUTS"
            )
        first_width, first_kernel, layout = LAYOUTS[version]
        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, first_width, kernel_size=first_kernel, stride=2),
            nn.ReLU(inplace=True),
        ]
        channels = first_width
        for item in layout:
            if item == MAX_POOL:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            else:
                squeeze, expand = item
                layers.append(Fire(channels, squeeze, expand, expand))
                channels = 2 * expand
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        final_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        # torchvision's initialisation: the classifier conv starts small so that the initial
        # scores are near zero; the others use Kaiming-uniform.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if module is final_conv:
                    nn.init.normal_(module.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(x), 1)


@register_model(input_size=INPUT_SIZE, paper=PAPER)
def squeezenet1_0(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.0: Iandola et al. 2016, Table 1 (1.25M parameters, torchvision-compatible).

    The default input is 227×227, the crop of the released Caffe model, at which Table 1's
    output sizes (111, 55, 27, 13) come out exactly; at 224×224 (torchvision's crop) the
    stride-2 conv1 drops a pixel. ``kwargs`` go to :class:`SqueezeNet` (``dropout``).
    """
    return SqueezeNet("1_0", num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(input_size=INPUT_SIZE, paper=PAPER)
def squeezenet1_1(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> SqueezeNet:
    """SqueezeNet 1.1: the authors' revision of Iandola et al. 2016's Table 1 network.

    A 3×3 first convolution of 64 filters and earlier pooling give 2.4× less computation than
    1.0 with the same accuracy and slightly fewer parameters (1.24M); torchvision-compatible.
    Default input 227×227 as for 1.0.
    """
    return SqueezeNet("1_1", num_classes=num_classes, in_chans=in_chans, **kwargs)
