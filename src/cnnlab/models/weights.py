"""The one weights resolver: every ``weights=`` name and every weights file goes through here.

Two kinds of named weights exist:

* torchvision's ImageNet weights (``IMAGENET1K_V1``, ``IMAGENET1K_V2``, ``DEFAULT``, ...) for
  the models whose name and state dict are torchvision's. Their URLs, file names, categories,
  preprocessing and reported accuracy are read from torchvision's own registry
  (``torchvision.models.get_model_weights``), never copied here. The file is read from (or
  downloaded into) torch hub's cache, ``$TORCH_HOME/hub/checkpoints``, as torchvision does;
  but it is loaded with ``torch.load(weights_only=True)`` (torchvision's loader unpickles with
  ``weights_only=False``), and a file found in the cache is checked against the sha256 prefix
  in its name, which torch checks only while downloading.
* cnnlab's own weights (``cifar10``), trained by cnnlab's recipes and shipped inside the
  package (``cnnlab/weights/MODEL.NAME.safetensors``) with a JSON provenance beside each file
  (recipe, config, seed, final metrics, data statistics, sha256); the sha256 is checked before
  loading. :func:`save_weights` writes that pair.

``weights_file=`` loads a local file instead: a state dict, a cnnlab checkpoint or a
safetensors file, checked key by key against the model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from cnnlab.errors import CheckpointError, CnnlabError, ConfigError, unknown_name
from cnnlab.nn.classifier import ImageClassifier

#: Where cnnlab's own weights live: inside the installed package.
OWN_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"

#: Paper-form models and the registered model that carries torchvision's weights for the same
#: network in its torchvision form.
PAPER_FORMS = {
    "alexnet_paper": "alexnet",
    "googlenet_paper": "googlenet",
    "vgg11_lrn": "vgg11",
    "vgg16_c": "vgg16",
}

# torchvision's DenseNet files predate the ban on '.' in module names ('norm.1' for 'norm1');
# torchvision renames those keys when it loads them, and so does cnnlab.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


class WeightsError(CheckpointError):
    """Named weights that do not exist, cannot be found or fail their checksum."""


@dataclass(frozen=True)
class Preprocessing:
    """How the images the weights were trained on were prepared; a user's image gets the same.

    Attributes:
        mean, std: per-channel normalisation of pixels in [0, 1].
        crop: ``(height, width)`` the model is fed.
        resize: an ``int`` resizes the shorter side to it, then the centre ``crop`` is cut
            (torchvision's ImageNet evaluation: 256 then 224); a ``(height, width)`` pair
            resizes to exactly that size (a small dataset's stored size, e.g. CIFAR's 32×32),
            and the result is resized bilinearly to ``crop`` if they differ, as cnnlab's
            loaders fit a dataset to a model.
        channels: 1 (grey) or 3 (RGB).
        source: where these figures come from, for messages.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: tuple[int, int]
    resize: int | tuple[int, int]
    channels: int
    source: str
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class WeightsInfo:
    """What a model's weights are and what they expect (timm calls this a pretrained cfg).

    Attributes:
        model: the registered model name.
        name: the weights' name (``IMAGENET1K_V1``, ``cifar10``), or None for a plain file.
        source: ``torchvision``, ``cnnlab`` or ``file``.
        file: the file the weights were read from.
        categories: class names in output order, when known.
        preprocessing: how to prepare an image, when known.
        metrics: reported accuracy (torchvision's ``_metrics``, or cnnlab's final metrics).
        provenance: the rest of what is known (recipe, config, seed, sha256, ...).
        model_kwargs: the options that build this architecture again without the weights
            (``create_model(model, **model_kwargs)``), e.g. GoogLeNet's ``transform_input``;
            a run fine-tuned from these weights records them in its checkpoint.
    """

    model: str
    name: str | None
    source: str
    file: str
    categories: tuple[str, ...] | None = None
    preprocessing: Preprocessing | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- which names exist


@functools.cache
def _torchvision_models() -> frozenset[str]:
    import torchvision.models

    return frozenset(torchvision.models.list_models(module=torchvision.models))


def _torchvision_enum(model: str):
    """torchvision's weights enum for ``model``, or None when torchvision has no such model."""
    if model not in _torchvision_models():
        return None
    from torchvision.models import get_model_weights

    return get_model_weights(model)


def _own_files(model: str) -> dict[str, Path]:
    """cnnlab's shipped weights for ``model``: name -> safetensors file."""
    found = {}
    for path in sorted(OWN_WEIGHTS_DIR.glob(f"{model}.*.safetensors")):
        found[path.name[len(model) + 1 : -len(".safetensors")]] = path
    return found


def available_weights(model: str) -> list[str]:
    """The ``weights=`` names ``model`` has: torchvision's (default first), then cnnlab's own."""
    enum = _torchvision_enum(model)
    names = []
    if enum is not None:
        names = [enum.DEFAULT.name] + [w.name for w in enum if w is not enum.DEFAULT]
    return names + list(_own_files(model))


def default_weights(model: str) -> str | None:
    """What ``weights="DEFAULT"`` means for ``model``: torchvision's default, else cnnlab's."""
    names = available_weights(model)
    return names[0] if names else None


def _no_weights_message(model: str, asked: str) -> str:
    if model in PAPER_FORMS:
        twin = PAPER_FORMS[model]
        return (
            f"'{model}' is the paper's form of the network and has no pretrained weights "
            f"(torchvision's weights are for its own form, registered as '{twin}'): use "
            f"create_model('{twin}', weights='{asked}') or `--weights` with model {twin}"
        )
    return (
        f"model '{model}' has no pretrained weights (torchvision has none for it and cnnlab "
        "ships none yet); `cnnlab models` lists which models have weights, or train it with "
        "`cnnlab train` and pass the run's best.pt as --weights-file"
    )


def resolve_weights(model: str, weights: str) -> WeightsInfo:
    """The weights named ``weights`` for the registered ``model``, without loading them.

    ``DEFAULT`` is torchvision's default for a model with ImageNet weights and cnnlab's own
    for a model that has only those. Names are matched case-insensitively.

    Raises:
        WeightsError: the model has no weights, or none by that name (the names it has are
            listed).
    """
    names = available_weights(model)
    if not names:
        raise WeightsError(_no_weights_message(model, weights))
    wanted = names[0] if weights.upper() == "DEFAULT" else weights
    match = next((n for n in names if n.lower() == wanted.lower()), None)
    if match is None:
        choices = f"choose one of {', '.join(names)} or DEFAULT"
        raise unknown_name(f"weights for {model}", weights, [*names, "DEFAULT"], choices)
    own = _own_files(model)
    if match in own:
        return _own_info(model, match, own[match])
    return _torchvision_info(model, getattr(_torchvision_enum(model), match))


def _torchvision_info(model: str, weights) -> WeightsInfo:
    transforms = weights.transforms()
    crop = transforms.crop_size[0]
    resize = transforms.resize_size[0]
    meta = weights.meta
    categories = meta.get("categories")
    return WeightsInfo(
        model=model,
        name=weights.name,
        source="torchvision",
        file=str(torchvision_cache_file(weights)),
        categories=tuple(categories) if categories else None,
        preprocessing=Preprocessing(
            mean=tuple(transforms.mean),
            std=tuple(transforms.std),
            crop=(crop, crop),
            resize=resize,
            channels=3,
            interpolation=transforms.interpolation.value,
            source=f"torchvision's {model} {weights.name} transforms",
        ),
        metrics=dict(meta.get("_metrics", {})),
        provenance={"url": weights.url, "recipe": meta.get("recipe"), "docs": meta.get("_docs")},
    )


def _own_info(model: str, name: str, path: Path) -> WeightsInfo:
    provenance_file = path.with_suffix(".json")
    try:
        provenance = json.loads(provenance_file.read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(
            f"{provenance_file} is missing or unreadable ({error}); reinstall cnnlab"
        ) from error
    data = provenance.get("data", {})
    preprocessing = None
    if data.get("mean") is not None:
        channels, height, width = provenance["input_size"]
        preprocessing = Preprocessing(
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            crop=(height, width),
            resize=tuple(data.get("image_size") or (height, width)),
            channels=channels,
            source=f"the {data.get('name', 'training')} training set of cnnlab's {name} weights",
        )
    classes = data.get("classes")
    return WeightsInfo(
        model=model,
        name=name,
        source="cnnlab",
        file=str(path),
        categories=tuple(classes) if classes else None,
        preprocessing=preprocessing,
        metrics=dict(provenance.get("metrics", {})),
        provenance=provenance,
    )


# --------------------------------------------------------------------------------- the files


def torchvision_cache_file(weights) -> Path:
    """Where torch hub keeps a torchvision weights file: ``$TORCH_HOME/hub/checkpoints/NAME``."""
    name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def sha256_of(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_hash_prefix(path: Path) -> None:
    """Check a file named as torch hub names downloads (``name-<sha256 prefix>.ext``).

    Raises:
        WeightsError: the file's sha256 does not start with the prefix in its name.
    """
    found = torch.hub.HASH_REGEX.search(path.name)
    if found is None:
        return
    digest = sha256_of(path)
    if not digest.startswith(found.group(1)):
        raise WeightsError(
            f"{path} is not the file its name promises: its sha256 starts with "
            f"{digest[: len(found.group(1))]}, not {found.group(1)}; it is not loaded. Delete it "
            "and copy or download the file again"
        )


def _fetch_torchvision_file(info: WeightsInfo, download: bool) -> Path:
    """The cached torchvision file, downloaded into the cache first when it is missing."""
    path = Path(info.file)
    url = info.provenance["url"]
    if not path.is_file():
        reason = "downloading is off"
        if download:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                prefix = torch.hub.HASH_REGEX.search(path.name)
                torch.hub.download_url_to_file(
                    url, str(path), hash_prefix=prefix.group(1) if prefix else None
                )
                return path
            except (OSError, RuntimeError) as error:
                reason = f"download failed: {str(error).strip().splitlines()[0][:120]}"
        if not path.is_file():
            raise WeightsError(
                f"{info.model} {info.name} weights: no file {path.name} in {path.parent} "
                f"({reason}); copy {path.name} (from {url}) into {path.parent}, or pass "
                "--weights-file PATH"
            )
    check_hash_prefix(path)
    return path


def read_torch_file(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    kind: str = "torch file",
    remedy: str = "use another copy of it",
) -> Any:
    """``torch.load(weights_only=True)`` with one-line errors: a file never runs code.

    ``kind`` names what the file should be and ``remedy`` what to do when it is truncated.

    Raises:
        CheckpointError: the file is missing, holds objects other than tensors and plain
            values, or is truncated or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no file at {path}; pass an existing weights or checkpoint file")
    with open(path, "rb") as file:
        magic = file.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # neither torch's zip nor a legacy pickle
        raise CheckpointError(
            f"{path} is truncated or not a {kind} (not a file torch.save wrote); {remedy}"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is a page of advice; the refused global is the one fact it holds
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"it names {refused.group(1)}, which" if refused else "an object that"
        raise CheckpointError(
            f"{path} holds more than tensors and plain values ({what} loading would run), so "
            "it is not loaded: cnnlab loads torch files with weights_only=True and never runs "
            "code from a file; use a checkpoint written by cnnlab or a plain state dict"
        ) from error
    except Exception as error:  # a corrupt pickle fails in many ways (KeyError, EOFError, ...)
        raise CheckpointError(
            f"{path} is truncated or not a {kind} ({type(error).__name__}); {remedy}"
        ) from error


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a safetensors file, a state dict or a cnnlab checkpoint."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not path.is_file():
            raise CheckpointError(f"no file at {path}; pass an existing weights file")
        try:
            return load_file(path)
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None
    state = read_torch_file(path)
    if isinstance(state, Mapping) and "model" in state and "model_name" in state:
        state = state["model"]  # a cnnlab checkpoint
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(
            f"{path} holds no state dict (a mapping of names to tensors); pass a file written "
            "by torch.save(model.state_dict()) or a cnnlab checkpoint"
        )
    return dict(state)


def _renamed_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        found = _OLD_DENSENET_KEY.match(key)
        renamed[found.group(1) + found.group(2) if found else key] = value
    return renamed


def load_state(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    where: str,
    *,
    label: str | None = None,
    remedy: str = "build the model with the options the weights were trained with (classes, "
    "in_chans, ...)",
) -> None:
    """Load ``state`` into ``model`` after checking it fits, key by key (``remedy``: what the
    message advises).

    Args:
        model: the model to fill.
        state: the tensors read from ``where``.
        where: the file, for messages.
        label: the model's name for messages (default: its class name).

    Raises:
        CheckpointError: keys missing, unexpected or of another shape, named (at most 4 each).
    """
    state = _renamed_keys(dict(state))
    own = model.state_dict()
    other_shape = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    problems = []
    for kind, keys in (
        ("missing", [k for k in own if k not in state]),
        ("unexpected", [k for k in state if k not in own]),
        ("of another shape", other_shape),
    ):
        if keys:
            shown = ", ".join(_describe_key(k, state, own) for k in sorted(keys)[:4])
            more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
            problems.append(f"{len(keys)} {kind} ({shown}{more})")
    if problems:
        raise CheckpointError(
            f"{where} does not fit {label or type(model).__name__}: keys {'; '.join(problems)}; "
            f"{remedy}"
        )
    model.load_state_dict(state)


def _describe_key(key: str, state: Mapping, own: Mapping) -> str:
    if key in state and key in own:
        file_shape = "×".join(map(str, state[key].shape))
        model_shape = "×".join(map(str, own[key].shape))
        return f"{key}: file {file_shape}, model {model_shape}"
    return key


# ----------------------------------------------------------------------- building with weights


def pretrained_model(
    model: str,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    *,
    download: bool = True,
    **kwargs,
) -> nn.Module:
    """Build the registered ``model`` and load named weights and/or a weights file into it.

    ``create_model(name, weights=..., weights_file=...)`` lands here. With both, the name
    gives the metadata (categories, preprocessing) and the file replaces the download (a
    file named as torch hub names downloads is checked against the hash prefix in its name).
    With ``num_classes`` other than the weights', every tensor but the classifier's is loaded
    and the classifier starts from its initial values (the usual fine-tuning start).

    The loaded model carries ``model.weights_info`` (:class:`WeightsInfo`).
    """
    from cnnlab.models._registry import create_model, model_entry

    if weights is None and weights_file is None:
        raise ConfigError("give weights=NAME or weights_file=PATH to load pretrained weights")
    name = model_entry(model).name
    try:
        info = resolve_weights(name, weights) if weights else None
    except CnnlabError as error:
        if weights_file is None:
            raise
        raise ConfigError(
            f"--weights {weights} conflicts with --weights-file {weights_file}: "
            f"{str(error).split(';')[0]}; drop --weights to load the file on its own"
        ) from None
    if info is not None and info.source == "cnnlab":
        kwargs = {**info.provenance.get("model_kwargs", {}), **kwargs}
    classes = len(info.categories) if info is not None and info.categories else None
    if classes is not None:
        kwargs.setdefault("num_classes", classes)
    user_aux = _torchvision_quirks(name, kwargs) if info and info.source == "torchvision" else None
    built = create_model(name, **kwargs)
    path = Path(weights_file) if weights_file is not None else None
    if info is None:
        assert path is not None  # no weights name: a weights file was given (checked above)
        info = WeightsInfo(model=name, name=None, source="file", file=str(path))
    elif info.source == "torchvision":
        if path is not None:
            check_hash_prefix(path)
        path = path or _fetch_torchvision_file(info, download)
    elif path is None:
        path = Path(info.file)
        _check_sha256(path, info.provenance.get("sha256"))
    state = read_state_dict(path)
    if info.source == "file":
        classes = _file_classes(built, state, kwargs.get("num_classes"))
    # fine-tuning for other classes: load into a head as the weights have it, then a fresh one
    new_head = classes is not None and kwargs.get("num_classes") not in (None, classes)
    if new_head:
        _classifier(built).reset_classifier(classes)
    load_state(built, state, str(path), label=f"model '{name}'")
    if user_aux is not None:
        _drop_untrained_aux(built, name, user_aux)
        kwargs["aux_logits"] = user_aux
    if new_head:
        _classifier(built).reset_classifier(kwargs["num_classes"])
    info = replace(info, file=str(path), model_kwargs=dict(kwargs))
    if new_head:  # the classifier is new: the weights' class names no longer apply
        info = replace(info, categories=None, metrics={})
    setattr(built, "weights_info", info)  # noqa: B010 (nn.Module's typed __setattr__)
    return built


def _file_classes(
    model: nn.Module, state: Mapping[str, torch.Tensor], classes: int | None
) -> int | None:
    """How many classes a plain file's classifier has, when it differs from the model's.

    A file names no classes; they are read from the tensors at the model's score layer
    (``get_classifier()``): the first of its tensors that has ``classes`` rows in the model
    and another shape in the file.
    """
    if classes is None or not isinstance(model, ImageClassifier):
        return None
    prefix = model.classifier_layers[0]
    renamed = _renamed_keys(dict(state))
    for key, tensor in model.get_classifier().named_parameters():
        found = renamed.get(f"{prefix}.{key}")
        if found is not None and tensor.shape[:1] == (classes,) and found.shape != tensor.shape:
            return found.shape[0]
    return None


def _classifier(model: nn.Module) -> ImageClassifier:
    """``model`` as the zoo's model contract (``get_classifier``, ``reset_classifier``)."""
    if not isinstance(model, ImageClassifier):
        raise ConfigError(
            f"{type(model).__name__} has no reset_classifier, so its classifier cannot be "
            "replaced for another number of classes; build it with the weights' classes"
        )
    return model


def _check_sha256(path: Path, expected: str | None) -> None:
    if expected is None or sha256_of(path) != expected:
        raise WeightsError(
            f"{path}'s sha256 does not match its provenance ({path.with_suffix('.json').name}); "
            "the file is damaged and is not loaded: reinstall cnnlab"
        )


def _torchvision_quirks(name: str, kwargs: dict) -> bool | None:
    """Set up ``kwargs`` as torchvision does before loading GoogLeNet's or Inception-v3's weights.

    Both were ported from Google's models, which take inputs in [-1, 1]: ``transform_input``
    turns ImageNet-normalised inputs into that range. The files hold auxiliary heads, so the
    model is built with them; torchvision then drops them unless the caller asked for them
    (GoogLeNet's are not trained at all; asking for them warns).

    Returns:
        whether the caller wants the auxiliary heads, or None for other models.
    """
    if name not in ("googlenet", "inception_v3"):
        return None
    wants_aux = kwargs.get("aux_logits", name == "inception_v3")
    kwargs.setdefault("transform_input", True)
    kwargs["aux_logits"] = True
    return wants_aux


def _drop_untrained_aux(model: nn.Module, name: str, wants_aux: bool) -> None:
    if wants_aux:
        if name == "googlenet":
            warnings.warn(
                "googlenet's auxiliary heads are not pretrained in torchvision's weights; train "
                "them before relying on their outputs",
                stacklevel=3,
            )
        return
    # as torchvision does; setattr because nn.Module's __setattr__ is typed for tensors/modules
    setattr(model, "aux_logits", False)  # noqa: B010
    for head in ("aux1", "aux2") if name == "googlenet" else ("AuxLogits",):
        setattr(model, head, None)


# -------------------------------------------------------------------- writing cnnlab's weights


def save_weights(
    model: str,
    name: str,
    state: Mapping[str, torch.Tensor],
    provenance: dict[str, Any],
    folder: str | Path = OWN_WEIGHTS_DIR,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[Path, Path]:
    """Write ``MODEL.NAME.safetensors`` and its provenance ``MODEL.NAME.json`` into ``folder``.

    Args:
        model: the registered model name the weights are for.
        name: the weights' name, e.g. ``cifar10`` (letters, digits, ``_`` and ``-``).
        state: the state dict.
        provenance: recipe, config, seed, final metrics, data statistics, ``model_kwargs``,
            ``input_size``; the sha256 of the written file is added.
        folder: where to write (default: the package's own weights folder).
        dtype: store floating-point tensors in this type (e.g. ``torch.bfloat16`` to halve a
            large model); integer buffers keep theirs. Loading casts back to the model's.

    Returns:
        ``(safetensors file, provenance file)``.
    """
    from safetensors.torch import save_file

    if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or name.upper() == "DEFAULT":
        raise ConfigError(f"weights name '{name}' must be letters, digits, _ or - (not DEFAULT)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
        .detach()
        .cpu()
        .contiguous()
        for k, v in state.items()
    }
    weights_path = folder / f"{model}.{name}.safetensors"
    save_file(tensors, weights_path, metadata={"model": model, "weights": name})
    weights_path.chmod(0o644)  # safetensors writes 0600; a shipped file is read by every user
    record = {"model": model, "weights": name, **provenance, "sha256": sha256_of(weights_path)}
    json_path = weights_path.with_suffix(".json")
    json_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return weights_path, json_path
