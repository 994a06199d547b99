"""What the lab page shows, as JSON-ready values computed by cnnlab itself.

Every number on the page comes from here: the summary table from ``cnnlab.sizing``, feature
maps and saliency from ``cnnlab.viz``, optimizer paths from ``cnnlab.optim.lab``, the loss
landscape from ``cnnlab.viz.landscape``. The page only draws them. Pictures travel as PNG data
URIs (Pillow) so one JSON document carries everything, served or exported.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.model_source import ModelSource, load_source, prepare_image, read_image
from cnnlab.optim.lab import run_optimizer
from cnnlab.optim.registry import optimizer_entry
from cnnlab.optim.surfaces import FUNCTIONS, TestFunction, get_function
from cnnlab.sizing import summary
from cnnlab.viz.features import CLASSIC_FILTERS, feature_maps
from cnnlab.viz.filters import conv_layers
from cnnlab.viz.landscape import LOSS_CAP, loss_landscape
from cnnlab.viz.saliency import saliency_maps

#: the optimizers that race, first-order then second-order (the lectures' order)
RACE_OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "newton",
    "bfgs",
    "cg",
    "hessian_free",
)
#: slider positions; the learning rate is a factor on each surface's tuned rate
SLIDERS: dict[str, tuple[float, ...]] = {
    "lr_scale": (0.1, 0.3, 1.0, 3.0, 10.0),
    "momentum": (0.5, 0.9, 0.99),
    "beta1": (0.5, 0.9, 0.99),
    "beta2": (0.9, 0.99, 0.999),
}
DEFAULT_SLIDERS = {"lr_scale": 1.0, "momentum": 0.9, "beta1": 0.9, "beta2": 0.999}
#: which sliders move which optimizer (the others ignore them, so the export stores fewer paths)
_USES = {
    "momentum": ("lr_scale", "momentum"),
    "nesterov": ("lr_scale", "momentum"),
    "adam": ("lr_scale", "beta1", "beta2"),
    "rmsprop": ("lr_scale", "beta2"),
    "sgd": ("lr_scale",),
    "adagrad": ("lr_scale",),
}
#: slider values the exported page holds paths for (a grid small enough to precompute)
EXPORT_SLIDERS: dict[str, tuple[float, ...]] = {
    "lr_scale": (0.3, 1.0, 3.0),
    "momentum": (0.5, 0.9, 0.99),
    "beta1": (0.5, 0.9),
    "beta2": (0.99, 0.999),
}
MAPS_SHOWN = 16  # feature maps drawn per layer
CONV_SIDE = 32  # the convolution view's input is at most this many pixels a side


def png_uri(pixels: np.ndarray) -> str:
    """``[H, W]`` or ``[H, W, 3|4]`` uint8 as a ``data:image/png`` URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] as a displayable ``[H, W]`` or ``[H, W, 3]`` uint8 array."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()


def _colormap(values: np.ndarray, name: str, low: float, high: float) -> np.ndarray:
    scaled = np.clip((values - low) / ((high - low) or 1.0), 0, 1)
    return (colormaps[name](scaled)[..., :3] * 255).round().astype(np.uint8)


# ----------------------------------------------------------------------------- inputs


def digit_sample() -> torch.Tensor:
    """The first of scikit-learn's bundled handwritten digits (a 0), 16×16, grey, in [0, 1]."""
    from sklearn.datasets import load_digits
    from torchvision.transforms.v2.functional import resize

    eight = torch.tensor(load_digits().images[0], dtype=torch.float32)[None] / 16.0
    return resize(eight, [16, 16], antialias=True).clamp(0, 1)


def cifar_like_sample() -> torch.Tensor:
    """A 32×32 colour picture with CIFAR's scale and content: sky, ground, a red car-like box.

    Drawn, not loaded: CIFAR-10 itself may not be on the machine, and the lab works offline.
    """
    rows = torch.linspace(0, 1, 32)[:, None].expand(32, 32)
    image = torch.stack([0.45 + 0.3 * rows, 0.6 + 0.2 * rows, 0.95 - 0.1 * rows])
    image[:, 22:] = torch.tensor([0.35, 0.5, 0.25])[:, None, None]  # grass
    image[:, 14:23, 6:26] = torch.tensor([0.85, 0.1, 0.1])[:, None, None]  # body
    image[:, 10:15, 11:21] = torch.tensor([0.7, 0.85, 0.95])[:, None, None]  # windows
    for left in (8, 20):  # wheels
        image[:, 21:25, left : left + 4] = 0.08
    return image


def _shrink(image: torch.Tensor, side: int) -> torch.Tensor:
    from torchvision.transforms.v2.functional import resize

    height, width = image.shape[-2:]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = [max(1, round(height * scale)), max(1, round(width * scale))]
    return resize(image, size, antialias=True).clamp(0, 1)


def _plane(name: str, label: str, image: torch.Tensor) -> dict[str, Any]:
    channels, height, width = image.shape
    return {
        "name": name,
        "label": label,
        "channels": channels,
        "h": height,
        "w": width,
        "data": [round(float(v), 3) for v in image.flatten()],
        "picture": png_uri(_to_uint8(image)),
    }


def _kernel(name: str, label: str, weights: torch.Tensor) -> dict[str, Any]:
    weights = weights if weights.dim() == 3 else weights[None]
    return {
        "name": name,
        "label": label,
        "channels": weights.shape[0],
        "size": weights.shape[-1],
        "data": [round(float(v), 4) for v in weights.flatten()],
    }


# ----------------------------------------------------------------------------- trajectory


@dataclass
class TrajectoryPlane:
    """The plane of a training path: its two principal directions and the path's coordinates.

    As Li et al. (2018, Sec. 7): the weights saved after each epoch minus the final ones, PCA
    of those differences (centred), the first two components as the landscape's directions
    (biases and batch-norm parameters left out, as the random directions leave them out).
    ``explained`` is the share of the path's variance the plane holds: low means the picture
    shows little of where training went.
    """

    directions: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]
    alphas: list[float]
    betas: list[float]
    epochs: list[int]
    explained: float

    @property
    def span(self) -> float:
        """Half the side of a grid that holds the whole path, with a margin."""
        return 1.25 * max(max(map(abs, self.alphas)), max(map(abs, self.betas)), 1e-6)

    def describe(self) -> str:
        return (
            f"training path of {len(self.epochs)} epochs; the PCA plane explains "
            f"{100 * self.explained:.1f}% of its variance"
        )


def trajectory_plane(model: torch.nn.Module, folder: Path) -> TrajectoryPlane | None:
    """The plane of the snapshots ``cnnlab train --save-trajectory`` left in ``folder``."""
    from cnnlab.checkpoint import load_checkpoint

    files = sorted(folder.glob("epoch-*.pt"))
    if len(files) < 3:  # two differences at least, for two directions
        return None
    final = {n: p.detach().float().cpu() for n, p in model.named_parameters() if p.dim() > 1}
    rows, epochs = [], []
    for file in files:
        snapshot = load_checkpoint(file)
        state = snapshot["model"]
        rows.append(torch.cat([(state[n].float() - w).flatten() for n, w in final.items()]))
        epochs.append(int(snapshot["epoch"]))
    differences = torch.stack(rows).double()
    centred = differences - differences.mean(dim=0)
    _, singular, components = torch.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    explained = float(variance[:2].sum() / variance.sum()) if float(variance.sum()) > 0 else 0.0
    coordinates = differences @ components[:2].T
    directions = []
    for component in components[:2]:
        pieces, offset = {}, 0
        for name, parameter in model.named_parameters():
            if name in final:
                size = parameter.numel()
                piece = component[offset : offset + size].reshape(parameter.shape)
                pieces[name] = piece.to(parameter.dtype)
                offset += size
            else:
                pieces[name] = torch.zeros_like(parameter.detach())
        directions.append(pieces)
    return TrajectoryPlane(
        (directions[0], directions[1]),
        [round(float(a), 5) for a in coordinates[:, 0]],
        [round(float(b), 5) for b in coordinates[:, 1]],
        epochs,
        explained,
    )


# ----------------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """A model (or none), an input image, and every view's data, computed on request.

    ``source`` is a checkpoint, a run directory or a registered model name (initial weights);
    without one the page shows the convolution and optimizer views only.
    """

    source: str | None = None
    image_path: str | None = None
    weights: str | None = None
    landscape_grid: int = 15
    landscape_batches: int = 2
    loaded: ModelSource | None = field(init=False, default=None, repr=False)
    trajectory: TrajectoryPlane | None = field(init=False, default=None, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)
    _landscape: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from cnnlab.viz.landscape import check_grid

        check_grid(self.landscape_grid)
        torch.set_grad_enabled(True)
        self.user_image = None
        if self.image_path:
            self.user_image = read_image(self.image_path, 3).float() / 255.0
        if self.source is not None:
            self.loaded = load_source(self.source, weights=self.weights)
            channels = self.loaded.input_size[0]
            if self.image_path:
                picture = read_image(self.image_path, channels)
            else:
                sample = digit_sample() if channels == 1 else cifar_like_sample()
                picture = (sample * 255).round().to(torch.uint8)
            batch, self.display = prepare_image(picture, self.loaded.preprocessing)
            self.batch = batch[None]
            if self.loaded.path is not None:
                folder = self.loaded.path.parent / "trajectory"
                self.trajectory = trajectory_plane(self.loaded.model, folder)

    @property
    def has_checkpoint(self) -> bool:
        return self.loaded is not None and self.loaded.checkpoint is not None

    # ------------------------------------------------------------------ the page's first data

    def page_data(self) -> dict[str, Any]:
        """What the page needs to draw its first screen (maps, races, saliency come later)."""
        return {
            "title": self.loaded.label if self.loaded else "no model (pass a model or checkpoint)",
            "conv": self.convolution_data(),
            "network": self.network_data(),
            "race": self.race_data(),
            "sliders": {name: list(values) for name, values in SLIDERS.items()},
            "defaults": DEFAULT_SLIDERS,
            "landscape": {
                "available": self.has_checkpoint,
                "why_not": ""
                if self.has_checkpoint
                else "the landscape needs a checkpoint "
                "(a trained model and the data it was trained on)",
                "grid": self.landscape_grid,
                "trajectory": self.trajectory.describe() if self.trajectory else None,
            },
            "saliency": {"available": self.loaded is not None, "classes": self._classes()},
        }

    def convolution_data(self) -> dict[str, Any]:
        inputs = [
            _plane("digit", "bundled digit (16×16)", digit_sample()),
            _plane("cifar", "CIFAR-like picture (32×32 RGB)", cifar_like_sample()),
        ]
        if self.user_image is not None and self.image_path:
            inputs.append(
                _plane("user", f"{Path(self.image_path).name}", _shrink(self.user_image, CONV_SIDE))
            )
        kernels = [
            _kernel(name, title, kernel) for name, (kernel, title, _) in CLASSIC_FILTERS.items()
        ]
        if self.loaded is not None:
            convs = conv_layers(self.loaded.model)
            if convs:
                layer, conv = convs[0]
                weights = conv.weight.detach().float().cpu()
                if weights.shape[-1] == weights.shape[-2]:
                    for index in range(min(4, weights.shape[0])):
                        kernels.append(
                            _kernel(
                                f"learned{index}",
                                f"learned: {layer} filter {index}",
                                weights[index],
                            )
                        )
        return {"inputs": inputs, "kernels": kernels}

    def network_data(self) -> dict[str, Any] | None:
        if self.loaded is None:
            return None
        table = summary(self.loaded.model, self.loaded.input_size).to_dict()
        modules = dict(self.loaded.model.named_modules())
        for row in table["rows"]:
            row["maps"] = bool(row["name"]) and row["name"] in modules and row["name"] != "input"
        return {
            "summary": table,
            "weights": "trained weights" if self.has_checkpoint else "initial weights",
            "input": png_uri(_to_uint8(self.display)),
            "input_size": list(self.loaded.input_size),
        }

    def race_data(self) -> dict[str, Any]:
        surfaces = {}
        for name, function in FUNCTIONS.items():
            surfaces[name] = {
                "lesson": function.lesson,
                "xlim": list(function.xlim),
                "ylim": list(function.ylim),
                "start": list(function.start),
                "minima": [list(m) for m in function.minima],
                "steps": function.steps,
                "tolerance": function.tolerance,
                "background": _surface_picture(function),
                "min_loss": function.minimum_value,
                "lrs": {o: _tuned_lr(function, o) for o in RACE_OPTIMIZERS},
            }
        return {"optimizers": list(RACE_OPTIMIZERS), "surfaces": surfaces}

    def _classes(self) -> list[str]:
        if self.loaded is None:
            return []
        with torch.no_grad():
            count = self.loaded.model.eval()(self.batch).shape[1]
        return [self.loaded.class_name(i) for i in range(count)]

    # ------------------------------------------------------------------ views on request

    def features(self, layer: str) -> dict[str, Any]:
        """The layer's output for the input image: shape and the first maps as one PNG strip."""
        if self.loaded is None:
            raise CnnlabError("feature maps need a model: pass a model name or checkpoint")
        with self._lock:
            maps = feature_maps(self.loaded.model, self.batch, [layer])[layer]
        channels, height, width = maps.shape
        shown = maps[:MAPS_SHOWN]
        low = shown.amin(dim=(1, 2), keepdim=True)
        high = shown.amax(dim=(1, 2), keepdim=True)
        scaled = torch.where(high > low, (shown - low) / (high - low).clamp_min(1e-12), 0.5)
        strip = torch.cat(list(scaled), dim=1)  # [H, shown·W]
        return {
            "layer": layer,
            "shape": [channels, height, width],
            "shown": len(shown),
            "strip": png_uri(_colormap(strip.numpy(), "viridis", 0.0, 1.0)),
        }

    def race(self, surface: str, optimizer: str, **settings: float) -> dict[str, Any]:
        """One optimizer's path, by ``cnnlab.optim.lab.run_optimizer`` (never re-implemented)."""
        function = get_function(surface)
        entry = optimizer_entry(optimizer)
        values = {**DEFAULT_SLIDERS, **settings}
        start = (
            float(values.get("x", function.start[0])),
            float(values.get("y", function.start[1])),
        )
        lr = _tuned_lr(function, entry.name)
        hyperparameters: dict[str, object] = {}
        if entry.order == 1 and lr is not None:
            lr *= values["lr_scale"]
        if entry.name in ("momentum", "nesterov"):
            hyperparameters["momentum"] = values["momentum"]
        if entry.name == "adam":
            hyperparameters["betas"] = (values["beta1"], values["beta2"])
        if entry.name == "rmsprop":
            hyperparameters["alpha"] = values["beta2"]
        return dict(
            _race_path(function.name, entry.name, start, lr, tuple(hyperparameters.items()))
        )

    def saliency(self, target: int | None = None) -> dict[str, Any]:
        """Gradient, guided backprop, deconvnet and occlusion maps, and the top 5 classes."""
        if self.loaded is None:
            raise CnnlabError("saliency needs a model: pass a model name or checkpoint")
        model = self.loaded.model.eval()
        with self._lock:
            with torch.no_grad():
                probabilities = torch.softmax(model(self.batch), dim=1)[0]
            maps = saliency_maps(model, self.batch, target)
        top = probabilities.topk(min(5, len(probabilities)))
        gradient = maps.gradient.numpy()
        span = float(np.abs(maps.occlusion.numpy()).max()) or 1.0
        return {
            "target": maps.target,
            "target_name": self.loaded.class_name(maps.target),
            "probability": maps.probability,
            "top5": [
                {"index": int(i), "name": self.loaded.class_name(int(i)), "p": float(p)}
                for p, i in zip(top.values, top.indices, strict=True)
            ],
            "input": png_uri(_to_uint8(self.display)),
            "maps": {
                "gradient": png_uri(_colormap(gradient, "hot", 0.0, float(gradient.max()) or 1.0)),
                "occlusion": png_uri(_colormap(maps.occlusion.numpy(), "RdBu_r", -span, span)),
            }
            | {  # None for a model without nn.ReLU modules (``skipped`` says so)
                name: png_uri(_signed_picture(signal))
                for name, signal in (("guided", maps.guided), ("deconvnet", maps.deconvnet))
                if signal is not None
            },
            "skipped": maps.skipped,
        }

    def landscape(self) -> dict[str, Any]:
        """The landscape's state; the first call starts computing it in a background thread."""
        if not self.has_checkpoint:
            raise CnnlabError("the loss landscape needs a checkpoint, not a model name")
        with self._lock:
            if not self._landscape:
                total = self.landscape_grid**2 + 2 * self.landscape_grid + 1
                self._landscape = {"state": "running", "done": 0, "total": total}
                threading.Thread(target=self._compute_landscape, daemon=True).start()
            return dict(self._landscape)

    def compute_landscape(self) -> dict[str, Any]:
        """The landscape, computed now (the exported page holds it)."""
        self.landscape()
        while self._landscape.get("state") == "running":
            threading.Event().wait(0.05)
        return dict(self._landscape)

    def _compute_landscape(self) -> None:
        from cnnlab.viz.inputs import fixed_batches

        def progress(done: int, total: int) -> None:
            self._landscape.update(done=done, total=total)

        loaded = self.loaded
        try:
            if loaded is None or not loaded.data:
                raise CnnlabError("the checkpoint does not say which data it was trained on")
            batches, data_name = fixed_batches(
                loaded.data,
                self.landscape_batches,
                64,
                loaded.input_size,
                data_dir=loaded.data_dir,
            )
            model = copy.deepcopy(loaded.model)  # its weights are swapped per grid point
            plane = self.trajectory
            result = loss_landscape(
                model,
                batches,
                grid=self.landscape_grid,
                span=plane.span if plane else 1.0,
                on_point=progress,
                directions=plane.directions if plane else None,
            )
        except CnnlabError as error:
            self._landscape.update(state="error", message=str(error))
            return
        shown = np.minimum(result.losses, LOSS_CAP)
        self._landscape.update(
            state="done",
            alphas=[round(float(a), 4) for a in result.alphas],
            betas=[round(float(b), 4) for b in result.betas],
            losses=[[round(float(v), 5) for v in row] for row in shown],
            cap=LOSS_CAP,
            data=data_name,
            describe=result.describe(),
            contour=_contour_picture(result.alphas, result.betas, shown, self.trajectory),
            trajectory=None
            if self.trajectory is None
            else {
                "alphas": self.trajectory.alphas,
                "betas": self.trajectory.betas,
                "epochs": self.trajectory.epochs,
                "describe": self.trajectory.describe(),
            },
        )


# ----------------------------------------------------------------------------- helpers


def _finite(value: torch.Tensor | float) -> float | None:
    number = float(value)
    return round(number, 8) if math.isfinite(number) else None


@functools.lru_cache(maxsize=256)
def _race_path(
    surface: str,
    optimizer: str,
    start: tuple[float, float],
    lr: float | None,
    hyperparameters: tuple[tuple[str, object], ...],
) -> dict[str, Any]:
    """``Lab.race``'s answer for exactly these inputs, kept: a slider moves some optimizers
    only (the learning-rate factor, none of the second-order ones), so a race after a slider
    change recomputes just those, and the others answer at once with the same path."""
    function = get_function(surface)
    run = run_optimizer(
        function,
        optimizer,
        steps=function.steps,
        start=start,
        lr=lr,
        hyperparameters=dict(hyperparameters),
    )
    points = run.points.nan_to_num(0.0)
    return {
        "optimizer": optimizer,
        "lr": lr,
        "x": [round(float(v), 5) for v in points[:, 0]],
        "y": [round(float(v), 5) for v in points[:, 1]],
        "loss": [_finite(v) for v in run.values],
        "steps_to_tolerance": run.steps_to_tolerance,
        "diverged": run.diverged or len(run.points) < function.steps + 1,
        "final_loss": _finite(run.values[-1]),
    }


def _tuned_lr(function: TestFunction, optimizer: str) -> float | None:
    """The learning rate ``run_lab`` would use: the surface's tuned one, none for 2nd order."""
    entry = optimizer_entry(optimizer)
    if entry.order == 2 or "lr" not in entry.defaults:
        return None
    tuned = function.lr(entry.name)
    return float(entry.defaults["lr"]) if tuned is None else tuned


def _signed_picture(signal: torch.Tensor) -> np.ndarray:
    """A signed backward signal as an image: grey is zero, scaled to its largest magnitude."""
    scale = float(signal.abs().max()) or 1.0
    picture = (0.5 + 0.5 * signal / scale).clamp(0, 1)
    return _to_uint8(picture)


def _surface_picture(function: TestFunction, size: int = 240) -> str:
    """The surface as filled bands of (log) loss, north up: the race's background."""
    xs = torch.linspace(*function.xlim, size, dtype=torch.float64)
    ys = torch.linspace(*function.ylim, size, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys.flip(0), indexing="xy"), dim=-1)
    with torch.no_grad():
        values = function(grid).numpy()
    if function.log_contours:
        values = np.log10(values - values.min() + 1e-3)
    low, high = np.percentile(values, [0.5, 99.5])
    bands = np.floor(np.clip((values - low) / ((high - low) or 1.0), 0, 1) * 18) / 18
    return png_uri(_colormap(bands, "viridis", 0.0, 1.0))


def _contour_picture(
    alphas: np.ndarray, betas: np.ndarray, losses: np.ndarray, path: TrajectoryPlane | None
) -> str:
    """The 2-D contour beside the 3-D surface, with the training path, drawn by matplotlib."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 3.6), dpi=90)
    axes = figure.subplots()
    filled = axes.contourf(alphas, betas, losses, levels=20, cmap="viridis")
    axes.contour(alphas, betas, losses, levels=20, colors="k", linewidths=0.3)
    axes.plot([0], [0], "r*", markersize=10)
    if path is None:
        axes.set_xlabel("α (direction δ)")
        axes.set_ylabel("β (direction η)")
    else:
        axes.plot(path.alphas, path.betas, "w.-", linewidth=1.5)
        axes.set_xlabel("1st PCA component")
        axes.set_ylabel("2nd PCA component")
        axes.set_title(f"training path: {100 * path.explained:.1f}% of its variance", fontsize=9)
    figure.colorbar(filled, ax=axes, label=f"loss (capped at {LOSS_CAP:g})")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def export_race_keys(function: TestFunction) -> list[tuple[str, dict[str, float]]]:
    """The (optimizer, slider values) pairs the exported page precomputes for one surface."""
    del function  # the same grid on every surface
    keys: list[tuple[str, dict[str, float]]] = []
    for optimizer in RACE_OPTIMIZERS:
        uses = _USES.get(optimizer, ())
        combos: list[dict[str, float]] = [{}]
        for slider in uses:
            combos = [c | {slider: v} for c in combos for v in EXPORT_SLIDERS[slider]]
        keys.extend((optimizer, combo) for combo in combos)
    return keys


def race_key(surface: str, optimizer: str, settings: dict[str, float]) -> str:
    """The exported page's lookup key: only the sliders that move this optimizer count."""
    used = _USES.get(optimizer, ())
    values = {**DEFAULT_SLIDERS, **settings}
    return "|".join([surface, optimizer, *(f"{s}={values[s]:g}" for s in used)])
