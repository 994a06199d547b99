"""The model API timm users rely on, shared by every family of the zoo.

Every cnnlab model is a feature extractor followed by a classifier head, so fine-tuning and
feature extraction read the same for every family (timm's names):

* ``forward_features(x)``: the last feature maps, before global pooling;
* ``forward_head(x)``: pooling, dropout and the classifier, from those maps to logits;
* ``forward(x)`` is ``forward_head(forward_features(x))`` (models with auxiliary classifiers
  add ``(aux, ...)`` in training mode);
* ``num_features``: the channels ``forward_features`` returns;
* ``get_classifier()`` and ``reset_classifier(num_classes)``: the layer that outputs class
  scores, and a fresh one of another width (auxiliary classifiers are resized too, so a
  fine-tuned GoogLeNet still trains with its side losses).

A family subclasses :class:`ImageClassifier` (before ``nn.Module`` or a torchvision class,
whose state-dict keys stay unchanged), writes the two ``forward_*`` methods, sets
``num_features`` and names its score layers in ``classifier_layers``.
"""

from __future__ import annotations

from typing import ClassVar, cast

import torch
from torch import nn


class ImageClassifier(nn.Module):
    """Base of every model in the zoo: ``forward_features`` then ``forward_head``.

    Attributes:
        num_features: channels of the feature maps ``forward_features`` returns.
        classifier_layers: dotted names of the layers that output class scores: the main
            classifier first, then any auxiliary ones (a missing or ``None`` one is skipped).
    """

    classifier_layers: ClassVar[tuple[str, ...]] = ("classifier",)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define forward_features")

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define forward_head")

    def forward(self, x: torch.Tensor):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The layer that outputs the class scores."""
        return self.get_submodule(self.classifier_layers[0])

    def reset_classifier(self, num_classes: int) -> None:
        """Replace every score layer (main and auxiliary) with a fresh one of ``num_classes``."""
        for name in self.classifier_layers:
            *path, child = name.split(".")
            owner: nn.Module | None = self
            for part in path:  # an auxiliary classifier left out is None on the way
                owner = getattr(owner, part, None)
            layer = getattr(owner, child, None)
            if layer is not None:
                setattr(owner, child, resized_classifier(layer, num_classes))


def resized_classifier(layer: nn.Module, num_classes: int) -> nn.Module:
    """A new, freshly initialised ``layer`` with ``num_classes`` outputs, on its device.

    A ``Sequential`` head has its last linear or convolution layer replaced. A family whose
    score layer is of another kind overrides ``reset_classifier`` (LeNet-5's RBF outputs).
    """
    if isinstance(layer, nn.Sequential):
        index = max(i for i, part in enumerate(layer) if isinstance(part, nn.Linear | nn.Conv2d))
        layer[index] = resized_classifier(layer[index], num_classes)
        return layer
    if isinstance(layer, nn.Linear):
        return nn.Linear(
            layer.in_features, num_classes, layer.bias is not None, layer.weight.device,
            layer.weight.dtype,
        )  # fmt: skip
    if isinstance(layer, nn.Conv2d):
        Pair = tuple[int, int]
        return nn.Conv2d(
            layer.in_channels, num_classes, cast(Pair, layer.kernel_size),
            cast(Pair, layer.stride), cast(Pair, layer.padding), bias=layer.bias is not None,
            device=layer.weight.device, dtype=layer.weight.dtype,
        )  # fmt: skip
    raise TypeError(f"cannot resize a classifier layer of type {type(layer).__name__}")
