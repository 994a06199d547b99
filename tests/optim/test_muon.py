"""cnnlab's Muon against torch.optim.Muon (2-D), Jordan's flattening of filters, and SGD; its
orthogonalisation in float32 where bf16 is not native, against the SVD."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnlab.optim.muon as muon_module
from cnnlab.errors import ConfigError
from cnnlab.optim import create_optimizer
from cnnlab.optim.muon import Muon, orthogonalize


@pytest.fixture
def bf16_orthogonalization(monkeypatch):
    """Orthogonalise in bf16, as torch.optim.Muon does, whatever this CPU has."""
    monkeypatch.setattr(muon_module, "orthogonalization_dtype", lambda device: torch.bfloat16)


def run(optimizer, params, grads):
    for grad in grads:
        for p, g in zip(params, grad, strict=True):
            p.grad = g.clone()
        optimizer.step()


def test_matrix_update_equals_torch_muon(bf16_orthogonalization):
    torch.manual_seed(0)
    ours = nn.Parameter(torch.randn(8, 12))
    theirs = nn.Parameter(ours.detach().clone())
    grads = [[torch.randn(8, 12)] for _ in range(4)]
    run(Muon([ours], lr=0.1, momentum=0.9, weight_decay=0.01, normalize=False), [ours], grads)
    reference = torch.optim.Muon([theirs], lr=0.1, momentum=0.9, weight_decay=0.01)
    run(reference, [theirs], grads)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_filters_are_updated_as_jordans_flattened_matrices(memory_format, bf16_orthogonalization):
    torch.manual_seed(1)
    filters = nn.Parameter(torch.randn(6, 4, 3, 3).contiguous(memory_format=memory_format))
    flat = nn.Parameter(filters.detach().reshape(6, 36).clone())
    grads = [torch.randn(6, 4, 3, 3) for _ in range(3)]
    run(Muon([filters], lr=0.05, momentum=0.6, normalize=True), [filters], [[g] for g in grads])
    reference = torch.optim.Muon([flat], lr=0.05, momentum=0.6, weight_decay=0.0)
    for grad in grads:  # Jordan: renormalise to norm sqrt(out), then the matrix update
        with torch.no_grad():
            flat.mul_(math.sqrt(6) / flat.norm())
        flat.grad = grad.reshape(6, 36)
        reference.step()
    # bf16 Newton-Schulz sums the columns in another order for channels_last
    torch.testing.assert_close(filters.detach().reshape(6, 36), flat.detach(), atol=2e-3, rtol=0)
    assert filters.is_contiguous(memory_format=memory_format)


def test_float32_update_is_torch_muons_to_bf16_rounding(monkeypatch):
    monkeypatch.setattr(muon_module, "orthogonalization_dtype", lambda device: torch.float32)
    torch.manual_seed(3)
    ours = nn.Parameter(torch.randn(16, 40))
    theirs = nn.Parameter(ours.detach().clone())
    grads = [[torch.randn(16, 40)] for _ in range(3)]
    run(Muon([ours], lr=0.1, momentum=0.9, normalize=False), [ours], grads)
    run(torch.optim.Muon([theirs], lr=0.1, momentum=0.9, weight_decay=0.0), [theirs], grads)
    # the orthogonalisations differ by bf16 rounding (~1.5% of entries ~0.15), x lr 0.1, 3 steps
    torch.testing.assert_close(ours.detach(), theirs.detach(), atol=5e-3, rtol=0)
    assert not torch.equal(ours, theirs)  # the float32 path was taken


@pytest.mark.parametrize("shape", [(64, 576), (300, 40)])
def test_float32_orthogonalization_keeps_the_singular_vectors(shape):
    """Newton-Schulz maps G = U S V^T to U S' V^T with S' between about 0.5 and 1.5 (Jordan)."""
    torch.manual_seed(4)
    matrix = torch.randn(*shape, dtype=torch.float64)
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    result = orthogonalize(matrix.float(), steps=5, dtype=torch.float32)
    assert result.dtype == torch.float32 and result.shape == shape
    rotated = u.T @ result.double() @ vh.T  # diagonal when the singular vectors are kept
    diagonal = torch.diagonal(rotated)
    assert (rotated - torch.diag(diagonal)).abs().max() < 1e-4
    assert diagonal.min() > 0.5 and diagonal.max() < 1.5


def test_bf16_is_used_only_where_native(monkeypatch):
    pick = muon_module.orthogonalization_dtype.__wrapped__
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(muon_module, "bf16_supported", lambda device, n=native: n)
        assert pick(torch.device("cpu")) == dtype


def test_registered_muon_splits_filters_from_the_rest():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(2, 3, 5, 5))
    optimizer = create_optimizer("muon", model, lr=0.2, sgd_lr=0.5, weight_decay=0.01)
    muon_group, sgd_group = optimizer.param_groups
    assert muon_group["orthogonalize"] and muon_group["params"] == [model[0].weight]
    assert muon_group["weight_decay"] == 0.0  # renormalised filters take no decay
    assert not sgd_group["orthogonalize"] and sgd_group["lr"] == 0.5
    # the SGD part is torch's SGD with Nesterov momentum 0.85
    others = [p for p in model.parameters() if p.dim() != 4]
    copies = [nn.Parameter(p.detach().clone()) for p in others]
    sgd = torch.optim.SGD(copies, lr=0.5, momentum=0.85, nesterov=True, weight_decay=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(2, 3, 5, 5)).square().sum().backward()
        for copy, p in zip(copies, others, strict=True):
            copy.grad = p.grad.clone()
        before = [p.detach().clone() for p in others]
        optimizer.step()
        for copy, b in zip(copies, before, strict=True):
            copy.data.copy_(b)
        sgd.step()
        for copy, p in zip(copies, others, strict=True):
            torch.testing.assert_close(copy.detach(), p.detach())
    state = optimizer.state_dict()
    assert len(state["state"]) == len(list(model.parameters()))


def test_muon_refuses_vectors_and_bad_settings():
    with pytest.raises(ConfigError, match="orthogonalize=False"):
        Muon([nn.Parameter(torch.zeros(3))])
    with pytest.raises(ConfigError, match="ns_steps"):
        create_optimizer("muon", nn.Linear(2, 2), ns_steps=0)
