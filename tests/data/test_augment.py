"""Batched augmentation against torchvision's per-image functions, and AlexNet's PCA lighting."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import v2

from cnnlab.data.augment import BatchAugment, Normalize, fit_input_size
from cnnlab.data.folder_transforms import (
    IMAGENET_EIGENVALUES,
    IMAGENET_EIGENVECTORS,
    PCALighting,
    folder_transform,
)
from cnnlab.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randint(
        0, 256, (16, 3, 10, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def test_crop_and_flip_equal_torchvision_pad_crop_flip_per_image(batch):
    augment = BatchAugment(crop_padding=4, flip=True)
    params = augment.sample(16, torch.Generator().manual_seed(1))
    indices = torch.randperm(16, generator=torch.Generator().manual_seed(2))
    ours = augment.gather(augment.prepare(batch), indices, params)
    assert params[:, 2].any() and not params[:, 2].all()
    for out, index, (top, left, flip) in zip(ours, indices, params.tolist(), strict=True):
        expected = TF.crop(TF.pad(batch[index], [4], fill=0), top, left, 10, 12)
        assert torch.equal(out, torch.flip(expected, dims=[-1]) if flip else expected)


def test_crop_extremes_shift_in_zeros(batch):
    augment = BatchAugment(crop_padding=4)
    params = torch.tensor([[0, 0, 0], [8, 8, 0]] + [[4, 4, 0]] * 14)
    ours = augment.gather(augment.prepare(batch), torch.arange(16), params)
    assert torch.equal(ours[0, :, 4:, 4:], batch[0, :, :6, :8]) and ours[0, :, :4].max() == 0
    assert torch.equal(ours[1, :, :6, :8], batch[1, :, 4:, 4:]) and ours[1, :, 6:].max() == 0
    assert torch.equal(ours[2:], batch[2:])  # the centre offset is the identity


def test_flip_alone_flips_exactly_the_chosen_images(batch):
    augment = BatchAugment(flip=True)
    params = torch.zeros(16, 3, dtype=torch.int64)
    params[::2, 2] = 1
    ours = augment.gather(augment.prepare(batch), torch.arange(16), params)
    for image, out, flip in zip(batch, ours, params[:, 2].tolist(), strict=True):
        assert torch.equal(out, torch.flip(image, dims=[-1]) if flip else image)


def test_no_augmentation_takes_the_images_as_stored(batch):
    for augment in (BatchAugment(), BatchAugment(crop_padding=4, flip=True)):
        indices = torch.tensor([3, 0, 15])
        assert torch.equal(augment.gather(augment.prepare(batch), indices, None), batch[indices])


def test_normalize_equals_torchvision(batch):
    reference = v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR_MEAN, CIFAR_STD)]
    )
    assert torch.allclose(Normalize(CIFAR_MEAN, CIFAR_STD)(batch), reference(batch), atol=1e-5)


def test_sampled_parameters_cover_the_range():
    augment = BatchAugment(crop_padding=4, flip=True)
    params = augment.sample(4000, torch.Generator().manual_seed(0))
    assert set(params[:, 0].tolist()) == set(range(9)) == set(params[:, 1].tolist())
    assert 0.45 < params[:, 2].float().mean() < 0.55
    no_flip = BatchAugment(crop_padding=4).sample(100, torch.Generator().manual_seed(0))
    assert no_flip[:, 2].eq(0).all()


@pytest.mark.parametrize(
    ("name", "default", "expected"),
    [
        ("default", "crop+flip", BatchAugment(4, True)),
        ("default", "crop", BatchAugment(4, False)),
        ("default", "none", BatchAugment(0, False)),
        ("flip", "crop", BatchAugment(0, True)),
        ("crop+flip", "none", BatchAugment(4, True)),
        ("none", "crop+flip", BatchAugment(0, False)),
    ],
)
def test_augment_names(name, default, expected):
    assert BatchAugment.from_name(name, dataset_default=default, crop_padding=4) == expected


def test_unknown_augment_lists_the_choices():
    with pytest.raises(ConfigError, match="crop\\+flip"):
        BatchAugment.from_name("inception", dataset_default="none", crop_padding=4)


def test_fit_input_size_resizes_like_torchvision_and_repeats_grey():
    grey = torch.rand(2, 1, 32, 32)
    up = fit_input_size(grey, (3, 224, 224))
    assert up.shape == (2, 3, 224, 224)
    expected = TF.resize(grey, [224, 224], interpolation=TF.InterpolationMode.BILINEAR)
    assert torch.allclose(up[:, :1], expected, atol=1e-5) and torch.equal(up[:, 0], up[:, 2])
    colour = torch.rand(2, 3, 64, 64)
    down = fit_input_size(colour, (3, 32, 32))
    expected = TF.resize(colour, [32, 32], antialias=True)
    assert torch.allclose(down, expected, atol=1e-5)
    assert fit_input_size(colour, (3, 64, 64)) is colour
    with pytest.raises(ConfigError, match="in_chans=3"):
        fit_input_size(colour, (1, 64, 64))


# ------------------------------------------------------------------------- AlexNet lighting


def test_imagenet_eigenvectors_are_orthonormal():
    vectors = torch.tensor(IMAGENET_EIGENVECTORS)
    assert torch.allclose(vectors.T @ vectors, torch.eye(3), atol=2e-3)


def test_pca_lighting_matches_formula():
    """Krizhevsky et al. 2012, 4.1: add [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, a_i ~ N(0, 0.1^2),
    one draw per image: the same shift at every pixel."""
    image = torch.rand(3, 5, 7)
    torch.manual_seed(7)
    lit = PCALighting()(image)
    torch.manual_seed(7)
    alpha = torch.randn(3) * 0.1
    vectors, values = torch.tensor(IMAGENET_EIGENVECTORS), torch.tensor(IMAGENET_EIGENVALUES)
    shift = sum(vectors[:, i] * alpha[i] * values[i] for i in range(3))
    assert torch.allclose(lit, image + shift.view(3, 1, 1), atol=1e-6)


def test_pca_lighting_shift_covariance():
    """Over many images the RGB shift has covariance V diag(0.1^2 l^2) V^T."""
    lighting = PCALighting()
    torch.manual_seed(0)
    shifts = torch.stack([lighting.make_params([])["rgb_shift"] for _ in range(20000)])
    assert lighting(torch.zeros(3, 1, 1)).abs().min() > 0
    vectors, values = torch.tensor(IMAGENET_EIGENVECTORS), torch.tensor(IMAGENET_EIGENVALUES)
    expected = vectors @ torch.diag((0.1 * values) ** 2) @ vectors.T
    assert torch.allclose(torch.cov(shifts.T), expected, atol=1e-5, rtol=0.05)


def test_pca_lighting_needs_float_images():
    with pytest.raises(ConfigError, match="ToDtype"):
        PCALighting()(torch.zeros(3, 4, 4, dtype=torch.uint8))


# -------------------------------------------------------------------- folder (ImageNet) pipelines


@pytest.mark.parametrize("augment", ["inception", "vgg", "alexnet", "flip", "none", "default"])
def test_folder_transforms_output_normalised_crops(augment):
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    transform = folder_transform(augment, train=True, size=224, mean=(0.5,) * 3, std=(0.25,) * 3)
    out = transform(image)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    assert -2.5 < float(out.min()) and float(out.max()) < 2.5


def test_folder_evaluation_is_resize_256_centre_crop_224():
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    transform = folder_transform("vgg", train=False, size=224, mean=(0,) * 3, std=(1,) * 3)
    expected = TF.center_crop(TF.resize(image, [256], antialias=True), [224, 224]).float() / 255
    assert torch.allclose(transform(image), expected, atol=1e-6)


def test_vgg_scale_jitter_draws_shorter_side_in_256_512():
    transform = folder_transform("vgg", train=True, size=224, mean=(0,) * 3, std=(1,) * 3)
    jitter = transform.transforms[0]
    torch.manual_seed(0)
    sides = [jitter.make_params([])["size"][0] for _ in range(3000)]
    assert min(sides) == 256 and max(sides) == 512
    torch.manual_seed(1)
    side = jitter.make_params([])["size"][0]
    torch.manual_seed(1)
    assert min(jitter(torch.zeros(1, 20, 30)).shape[-2:]) == side


def test_unknown_folder_augment():
    with pytest.raises(ConfigError, match="inception"):
        folder_transform("crop+flip", train=True, size=224, mean=(0,) * 3, std=(1,) * 3)
