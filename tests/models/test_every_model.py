"""Checks every registered model must pass, whatever its family.

Each model is built on the meta device (free), run there at its default input size with
custom ``num_classes`` / ``in_chans``, and run for real (forward and backward on the CPU) at
a small input size that is found on the meta device. LeNet-5, AlexNet, ZFNet and each of
VGG's six configurations (A, A-LRN, B, C, D, E; batch norm in two of them) also run for real at
their default input size; the other families' own test files do that for theirs. Where
torchvision has a model of the same name, the state dict must match its keys and shapes so
that torchvision's weights load unchanged.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torchvision

import cnnlab
from cnnlab.models import list_models, model_entry
from cnnlab.models.resolve import create_on_meta

MODELS = list_models()
RUN_AT_DEFAULT_SIZE = {
    *("lenet5", "lenet5_modern", "alexnet", "alexnet_paper", "zfnet"),
    *("vgg11", "vgg11_lrn", "vgg13_bn", "vgg16_c", "vgg16", "vgg19_bn"),
}
TORCHVISION_NAMES = sorted(set(MODELS) & set(torchvision.models.list_models(torchvision.models)))
# Sides tried, smallest first, for the cheap real run; the first one the network accepts
# (in training and in eval mode) is used, else the default size.
PROBE_SIDES = (32, 48, 64, 80, 96, 112, 128, 160, 192)
CLASSES, CHANNELS, BATCH = 7, 2, 2


def outputs_of(result: torch.Tensor | tuple) -> tuple[torch.Tensor, ...]:
    """Logits (and auxiliary logits, for models that return them in training mode)."""
    return result if isinstance(result, tuple) else (result,)


@functools.cache
def small_input_size(name: str) -> tuple[int, int, int]:
    """The smallest probe size below the default at which ``name`` runs (probed on meta)."""
    model = create_on_meta(name)
    channels, height, width = model.default_input_size
    for side in PROBE_SIDES:
        if side >= min(height, width):
            break
        try:
            for training in (True, False):
                model.train(training)
                model(torch.empty(BATCH, channels, side, side, device="meta"))
        except Exception:  # this side is too small for the network; try the next
            continue
        return (channels, side, side)
    return (channels, height, width)


def test_registry_is_populated():
    for expected in ("lenet5", "lenet5_modern", "alexnet", "alexnet_paper", "zfnet", "vgg16"):
        assert expected in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_builds_on_meta_and_honours_num_classes_and_in_chans(name):
    # weight initialisation is skipped: it would only fill meta tensors, at a cost
    default = create_on_meta(name)
    custom = create_on_meta(name, num_classes=CLASSES, in_chans=CHANNELS)
    size = default.default_input_size
    assert isinstance(size, tuple) and len(size) == 3
    assert all(isinstance(n, int) and n > 0 for n in size)
    assert all(t.is_meta for t in [*default.parameters(), *default.buffers()])
    assert custom.default_input_size == (CHANNELS, *size[1:])
    assert model_entry(name).paper and model_entry(name).year is not None

    x = torch.empty(BATCH, *custom.default_input_size, device="meta")
    for training in (True, False):
        result = custom.train(training)(x)
        assert training or isinstance(result, torch.Tensor)  # eval mode: plain logits
        assert all(tuple(out.shape) == (BATCH, CLASSES) for out in outputs_of(result))


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_on_cpu(name):
    torch.manual_seed(0)
    model = cnnlab.create_model(name, num_classes=CLASSES)
    small = small_input_size(name)
    runs = [(BATCH, small)]
    if name in RUN_AT_DEFAULT_SIZE and small != model.default_input_size:
        runs.append((1, model.default_input_size))  # batch 1 keeps the 224x224 runs cheap

    for batch, size in runs:
        model.train()
        model.zero_grad(set_to_none=True)
        outputs = outputs_of(model(torch.randn(batch, *size)))
        for out in outputs:
            assert tuple(out.shape) == (batch, CLASSES), (size, out.shape)
            assert torch.isfinite(out).all(), size
        sum(out.square().mean() for out in outputs).backward()
        for param_name, param in model.named_parameters():
            if param.requires_grad:
                assert param.grad is not None, f"{param_name} gets no gradient at {size}"
                assert torch.isfinite(param.grad).all(), f"{param_name} at {size}"

    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(BATCH, *small))
    assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == (BATCH, CLASSES)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_state_dict_matches_torchvision(name):
    with torch.device("meta"):
        ours = cnnlab.create_model(name)
        reference = torchvision.models.get_model(name, weights=None)
    ours_shapes = {key: tuple(t.shape) for key, t in ours.state_dict().items()}
    reference_shapes = {key: tuple(t.shape) for key, t in reference.state_dict().items()}
    assert ours_shapes == reference_shapes
