"""ImageNet-style augmentation for image folders, built from torchvision.transforms.v2.

Names (``augment=``), each followed by a horizontal flip, conversion to float and the
dataset's mean/std normalisation; ``size`` is the model's crop (224 unless the model says
otherwise) and every other side scales with it, ``resize = size * 256 / 224``. A crop of 227 is
AlexNet's: the paper writes "224" but its own arithmetic ((227 - 11) / 4 + 1 = 55 maps) needs
227, so 227 counts as the nominal 224 (227 crops of 256 images):

* ``"inception"`` (the default): random-resized crop covering 8%-100% of the area with aspect
  ratio 3/4-4/3 (Szegedy et al. 2015, GoogLeNet).
* ``"vgg"``: scale jitter, the shorter side resized to S drawn from [256, 512], then a random
  224 crop (Simonyan & Zisserman 2015).
* ``"alexnet"``: shorter side 256, central 256x256, random 224 (227) crop, and PCA colour
  lighting (Krizhevsky et al. 2012, section 4.1).
* ``"zfnet"``: the same crops without the lighting (Zeiler & Fergus 2013, section 3).
* ``"resnet"``: scale jitter with the shorter side drawn from [256, 480], a random 224 crop and
  the PCA lighting (He et al. 2016, section 3.4).
* ``"flip"``: the evaluation crop, flipped at random.
* ``"none"`` (and every test split): shorter side resized to 256, central 224 crop.

Only the PCA lighting is written here: torchvision has the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2.functional import is_pure_tensor

from cnnlab.errors import ConfigError

FOLDER_AUGMENTATIONS = ("default", "none", "flip", "inception", "vgg", "alexnet", "zfnet", "resnet")
#: the augmentations that end with AlexNet's PCA colour lighting
_LIGHTING = ("alexnet", "resnet")

# Principal components of ImageNet's RGB pixel values in [0, 1] (eigenvalues, and the
# eigenvectors as columns), as used by fb.resnet.torch and torchvision's reference scripts.
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


class PCALighting(v2.Transform):
    """AlexNet's colour augmentation: add ``V @ (alpha * lambda)`` to every RGB pixel.

    ``V`` holds the eigenvectors of the RGB covariance as columns, ``lambda`` its eigenvalues
    and ``alpha`` is drawn from N(0, ``alpha_std``^2) once per image (Krizhevsky et al. 2012,
    section 4.1: "object identity is invariant to changes in the intensity and color of the
    illumination"). torchvision has no such transform. Apply it to float images in [0, 1].
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Video, is_pure_tensor)

    def __init__(
        self,
        alpha_std: float = 0.1,
        eigenvalues: Sequence[float] = IMAGENET_EIGENVALUES,
        eigenvectors: Sequence[Sequence[float]] = IMAGENET_EIGENVECTORS,
    ) -> None:
        super().__init__()
        self.alpha_std = alpha_std
        self.eigenvalues = torch.tensor(eigenvalues, dtype=torch.float32)
        self.eigenvectors = torch.tensor(eigenvectors, dtype=torch.float32)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        alpha = torch.randn(3) * self.alpha_std
        return {"rgb_shift": self.eigenvectors @ (alpha * self.eigenvalues)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not inpt.is_floating_point() or inpt.shape[-3] != 3:
            raise ConfigError(
                "PCALighting needs float RGB images in [0, 1]; put it after "
                "v2.ToDtype(torch.float32, scale=True)"
            )
        shifted = inpt + params["rgb_shift"].to(inpt).view(3, 1, 1)
        if isinstance(inpt, tv_tensors.TVTensor):
            return tv_tensors.wrap(shifted, like=inpt)
        return shifted


def folder_transform(
    augment: str,
    *,
    train: bool,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> v2.Compose:
    """The per-image pipeline for a uint8 [3, H, W] image: augmentation, float, normalisation."""
    if augment not in FOLDER_AUGMENTATIONS:
        raise ConfigError(
            f"unknown augmentation '{augment}' for an image folder; "
            f"choose one of {', '.join(FOLDER_AUGMENTATIONS)}"
        )
    nominal = 224 if size == 227 else size  # AlexNet's "224" (module docstring)
    resize = round(nominal * 256 / 224)
    evaluation = [v2.Resize(resize, antialias=True), v2.CenterCrop(size)]
    if not train or augment == "none":
        steps = evaluation
    else:
        steps = {
            "default": [v2.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))],
            "inception": [v2.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))],
            "vgg": [v2.RandomResize(resize, 2 * resize + 1), v2.RandomCrop(size)],
            "alexnet": [v2.Resize(resize), v2.CenterCrop(resize), v2.RandomCrop(size)],
            "zfnet": [v2.Resize(resize), v2.CenterCrop(resize), v2.RandomCrop(size)],
            "resnet": [
                v2.RandomResize(resize, round(nominal * 480 / 224) + 1),
                v2.RandomCrop(size),
            ],
            "flip": evaluation,
        }[augment] + [v2.RandomHorizontalFlip()]
    steps = [*steps, v2.ToDtype(torch.float32, scale=True)]
    if train and augment in _LIGHTING:
        steps.append(PCALighting())
    return v2.Compose([*steps, v2.Normalize(list(mean), list(std))])
