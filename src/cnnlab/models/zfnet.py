"""ZFNet (Zeiler & Fergus 2013, "Visualizing and understanding convolutional networks").

AlexNet's layout with the changes the paper's deconvnet visualisations suggested: a 7×7
stride-2 first layer instead of 11×11 stride 4 (fewer dead and aliased filters), dense
connections on a single GPU, and, in the paper's best single model (Table 2), 512-1024-512
filters in conv3-5.
"""

from __future__ import annotations

from cnnlab.models._registry import register_model
from cnnlab.models.alexnet import ConvStage, EightLayerConvNet

PAPER = "Zeiler & Fergus 2013"

#: Zeiler & Fergus 2013, Fig. 3 (Fig. 2 in arXiv v1) for conv1-2 (pool, then contrast
#: normalisation across maps) and Table 2 / the lectures for the widened conv3-5.
ZFNET_STAGES = (
    ConvStage(96, 7, stride=2, padding=1, after=("pool", "lrn")),
    ConvStage(256, 5, stride=2, after=("pool", "lrn")),
    ConvStage(512, 3, padding=1),
    ConvStage(1024, 3, padding=1),
    ConvStage(512, 3, padding=1, after=("pool",)),
)


@register_model(input_size=(3, 224, 224), paper="Zeiler & Fergus 2013")
def zfnet(*, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> EightLayerConvNet:
    """ZFNet: Zeiler & Fergus 2013, Fig. 3 with conv3-5 widened to 512-1024-512 (Table 2).

    224×224 input; 96 filters 7×7 stride 2 give 110×110 maps, then 55 after 3×3/2 pooling,
    26 after conv2 (5×5 stride 2), 13 after pooling, 13 through conv3-5 and 6×6 after the
    last pooling, the sizes printed in Fig. 3. Padding 1 on conv1 and rounded-up pooling
    are what reproduce those sizes. Normalisation is AlexNet's LRN.
    """
    return EightLayerConvNet(
        ZFNET_STAGES, num_classes=num_classes, in_chans=in_chans, pool_ceil_mode=True, **kwargs
    )
