"""Which pixels decide the top class: gradients, guided backpropagation, deconvnet, occlusion.

* Gradient saliency (Simonyan et al. 2013): |d score / d pixel|, the maximum over colour channels.
* Deconvnet (Zeiler & Fergus 2014) and guided backpropagation (Springenberg et al. 2014) are the
  same backward pass with a different rule at every ReLU: the plain gradient passes where the
  forward input was positive; the deconvnet passes where the *backward signal* is positive;
  guided backpropagation where both are. The rule is swapped in by replacing each ``nn.ReLU``'s
  forward with a custom autograd function for the duration of one backward pass, and the
  modules are restored afterwards (in-place ReLUs included: the replacement is out of place).
  ReLUs applied as functions (``F.relu``) cannot be reached this way; a model without
  ``nn.ReLU`` modules (LeNet-5's scaled tanh) gets the two maps that need none, and is told
  which were skipped.
* Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7): a grey square (the training set's mean,
  i.e. 0 after normalisation) is slid over the image and the drop in the top class's probability
  is recorded; all occluded copies are evaluated in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

from cnnlab.errors import CnnlabError, ConfigError

RULES = ("guided", "deconvnet")


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients through positive inputs."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x > 0) * (grad_output > 0)


class _DeconvReLU(torch.autograd.Function):
    """ReLU whose backward is a ReLU of the backward signal, ignoring the forward input."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clamp(min=0)


@contextmanager
def relu_backward_rule(model: nn.Module, rule: str) -> Iterator[None]:
    """Within the block, every ``nn.ReLU`` of ``model`` back-propagates with ``rule``.

    Raises:
        CnnlabError: ``rule`` is unknown, or the model has no ``nn.ReLU`` module.
    """
    function = {"guided": _GuidedReLU, "deconvnet": _DeconvReLU}.get(rule)
    if function is None:
        raise CnnlabError(f"unknown ReLU backward rule '{rule}'; use {' or '.join(RULES)}")
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise CnnlabError(
            f"{type(model).__name__} has no nn.ReLU module, so {rule} maps cannot be drawn"
        )
    for relu in relus:
        relu.forward = function.apply  # an instance attribute shadows the class's forward
    try:
        yield
    finally:
        for relu in relus:
            del relu.forward


def top_class(model: nn.Module, batch: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model.eval()(batch)[0].argmax())


def input_gradient(
    model: nn.Module, batch: torch.Tensor, target: int, rule: str | None = None
) -> torch.Tensor:
    """d logit[target] / d input for a one-image ``batch``, ``[C, H, W]``.

    ``rule=None`` is the true gradient; ``"guided"`` or ``"deconvnet"`` change the ReLUs'
    backward (see the module docstring).
    """
    model.eval()
    image = batch.detach().clone().requires_grad_(True)
    if rule is None:
        logit = model(image)[0, target]
        return torch.autograd.grad(logit, image)[0][0]
    with relu_backward_rule(model, rule):
        logit = model(image)[0, target]
        return torch.autograd.grad(logit, image)[0][0]


def gradient_saliency(model: nn.Module, batch: torch.Tensor, target: int) -> torch.Tensor:
    """Simonyan et al.'s map: the largest |gradient| over the colour channels, ``[H, W]``."""
    return input_gradient(model, batch, target).abs().amax(dim=0)


@torch.no_grad()
def occlusion_sensitivity(
    model: nn.Module,
    batch: torch.Tensor,
    target: int,
    patch: int | None = None,
    stride: int | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Drop of the target's probability when a grey square covers each pixel, ``[H, W]``.

    Every pixel gets the mean drop over the square positions that covered it.

    Args:
        patch: side of the square (default: an eighth of the image, at least 2 pixels).
        stride: step between positions (default: half the patch).
        batch_size: occluded copies evaluated per forward pass.
    """
    model.eval()
    _, channels, height, width = batch.shape
    patch = patch or max(2, min(height, width) // 8)
    stride = stride or max(1, patch // 2)
    if patch > min(height, width):
        raise CnnlabError(f"occlusion patch {patch} is larger than the {height}×{width} image")
    base = torch.softmax(model(batch), dim=1)[0, target]
    tops = list(range(0, height - patch + 1, stride))
    lefts = list(range(0, width - patch + 1, stride))
    if tops[-1] != height - patch:
        tops.append(height - patch)
    if lefts[-1] != width - patch:
        lefts.append(width - patch)
    positions = [(top, left) for top in tops for left in lefts]
    drops = []
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        occluded = batch.expand(len(chunk), -1, -1, -1).clone()
        for index, (top, left) in enumerate(chunk):
            occluded[index, :, top : top + patch, left : left + patch] = 0.0
        drops.append(base - torch.softmax(model(occluded), dim=1)[:, target])
    drops = torch.cat(drops)
    total = torch.zeros(height, width)
    count = torch.zeros(height, width)
    for drop, (top, left) in zip(drops.tolist(), positions, strict=True):
        total[top : top + patch, left : left + patch] += drop
        count[top : top + patch, left : left + patch] += 1
    return total / count


@dataclass
class SaliencyMaps:
    """The maps for one image and its top class; ``guided`` and ``deconvnet`` are ``None``
    for a model without ``nn.ReLU`` modules, and ``skipped`` says why."""

    target: int
    probability: float
    gradient: torch.Tensor
    guided: torch.Tensor | None
    deconvnet: torch.Tensor | None
    occlusion: torch.Tensor
    skipped: str = ""


def saliency_maps(model: nn.Module, batch: torch.Tensor, target: int | None = None) -> SaliencyMaps:
    """All four maps for the top class (or ``target``); the two ReLU rules only where the
    model has ``nn.ReLU`` modules.

    Raises:
        ConfigError: ``target`` is not one of the model's class indices.
    """
    with torch.no_grad():
        probabilities = torch.softmax(model.eval()(batch), dim=1)[0]
    classes = probabilities.shape[0]
    if target is None:
        target = int(probabilities.argmax())
    elif not 0 <= target < classes:
        raise ConfigError(
            f"--target {target} is not a class of this model: it has {classes} classes, "
            f"0 to {classes - 1}"
        )
    has_relu = any(isinstance(m, nn.ReLU) for m in model.modules())
    skipped = ""
    if not has_relu:
        skipped = (
            f"guided backpropagation and deconvnet skipped: they change the backward rule of "
            f"nn.ReLU modules and {type(model).__name__} has none"
        )
    return SaliencyMaps(
        target=target,
        probability=float(probabilities[target]),
        gradient=gradient_saliency(model, batch, target),
        guided=input_gradient(model, batch, target, "guided") if has_relu else None,
        deconvnet=input_gradient(model, batch, target, "deconvnet") if has_relu else None,
        occlusion=occlusion_sensitivity(model, batch, target),
        skipped=skipped,
    )


def _as_picture(signal: torch.Tensor) -> torch.Tensor:
    """A signed ``[C, H, W]`` backward signal as an image: centred on grey, scaled to [0, 1]."""
    scale = float(signal.abs().max()) or 1.0
    picture = 0.5 + 0.5 * signal / scale
    return picture.permute(1, 2, 0) if picture.shape[0] == 3 else picture[0]


def saliency_figure(display: torch.Tensor, maps: SaliencyMaps, class_name: str) -> Figure:
    """Image, gradient saliency, guided backprop, deconvnet and occlusion side by side (the
    ReLU maps only when they were computed)."""
    relu_maps = [
        (signal, title)
        for signal, title in (
            (maps.guided, "guided backpropagation\n(Springenberg et al. 2014)"),
            (maps.deconvnet, "deconvnet\n(Zeiler & Fergus 2014)"),
        )
        if signal is not None
    ]
    panels = 3 + len(relu_maps)
    figure = Figure(figsize=(3.8 * panels, 4.4))
    axes = figure.subplots(1, panels)
    if display.shape[0] == 3:
        axes[0].imshow(display.permute(1, 2, 0).numpy())
    else:
        axes[0].imshow(display[0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"input\ntop class {class_name} (p = {maps.probability:.3f})")
    drawn = axes[1].imshow(maps.gradient.numpy(), cmap="hot")
    figure.colorbar(drawn, ax=axes[1], fraction=0.046, pad=0.04, label="|∂ score / ∂ pixel|")
    axes[1].set_title("gradient saliency\n(Simonyan et al. 2013)")
    for ax, (signal, title) in zip(axes[2:-1], relu_maps, strict=True):
        grey = signal.shape[0] != 3
        drawn = ax.imshow(
            _as_picture(signal).numpy(), cmap="gray" if grey else None, vmin=0, vmax=1
        )
        if grey:
            figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04, label="signal (0.5 = zero)")
        ax.set_title(f"{title}\ngrey = 0, scaled to its max")
    span = float(maps.occlusion.abs().max()) or 1.0
    drawn = axes[-1].imshow(maps.occlusion.numpy(), cmap="RdBu_r", vmin=-span, vmax=span)
    figure.colorbar(
        drawn, ax=axes[-1], fraction=0.046, pad=0.04, label=f"drop in p({class_name}) when covered"
    )
    axes[-1].set_title("occlusion sensitivity\n(grey square slid over the image)")
    for ax in axes:
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    figure.suptitle(f"What the model looks at for class {class_name}")
    figure.tight_layout()
    return figure


def save_saliency(
    source: str | Path,
    image: str | Path,
    out: str | Path | None = None,
    target: int | None = None,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
) -> tuple[Path, SaliencyMaps, str]:
    """``cnnlab saliency``: the four maps for one image's top class, drawn to a PNG.

    ``source`` is MODEL_OR_CHECKPOINT; ``weights``/``weights_file`` go with a model name.
    """
    from cnnlab.viz.inputs import default_output, image_input, load_model, save_figure

    loaded = load_model(source, weights=weights, weights_file=weights_file)
    batch, display, stats = image_input(image, loaded)
    maps = saliency_maps(loaded.model, batch, target)
    class_name = stats.class_name(maps.target)
    figure = saliency_figure(display, maps, class_name)
    out = out or default_output(source, "saliency")
    return save_figure(figure, out, inputs=[source, image]), maps, class_name
