"""Export a model or a trained checkpoint to ONNX, TorchScript or safetensors, checked.

Every export is verified right after it is written: the exported file is loaded back and run
on a random batch (ONNX by onnxruntime, TorchScript by ``torch.jit.load``), and its outputs are
compared with PyTorch's. The difference is reported relative to the largest output
(``max |exported - torch| / max |torch|``) because a randomly initialised deep net can
produce logits of 1e8, where any absolute bound would mislead; above ``TOLERANCE`` (float32)
the export fails. A safetensors file holds the state dict only (for sharing weights) and must
load back bit for bit.

ONNX goes through ``torch.onnx.export`` with the dynamo exporter (``torch.export`` underneath,
which needs onnxscript); the weights are kept inside the one ``.onnx`` file unless they are
too large for protobuf's 2 GB limit.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import ConfigError, ExportError
from cnnlab.outputs import check_output

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}
#: the extensions an --out may have, by format
OUT_SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth"),
    "safetensors": (".safetensors",),
}
TOLERANCE = 1e-4
# protobuf refuses messages over 2 GiB; leave room for the graph itself.
ONNX_SINGLE_FILE_LIMIT = int(1.8 * 2**30)


@dataclass(frozen=True)
class ExportResult:
    """What was written and how well it agrees with PyTorch.

    Attributes:
        path: the written file (an ONNX file too large for one file has its weights beside it
            in ``path.name + ".data"``).
        format: ``onnx``, ``torchscript`` or ``safetensors``.
        model: the registered model name.
        input_size: ``(C, H, W)`` of one example the export was traced with.
        dynamic_batch: whether the batch dimension was left free.
        relative_difference: ``max |exported - torch| / max |torch|`` on a random batch.
        seconds: time to export (writing included), not counting the check.
        bytes: size of the written file(s).
    """

    path: Path
    format: str
    model: str
    input_size: tuple[int, int, int]
    dynamic_batch: bool
    relative_difference: float
    seconds: float
    bytes: int

    def describe(self) -> str:
        """One line: where, how large, how close to PyTorch."""
        size = "x".join(map(str, self.input_size))
        if self.format == "safetensors":
            what = f"weights of a {size} model"
            check = "weights read back: max |difference| / max |weight|"
        else:
            batch = "dynamic batch" if self.dynamic_batch else "batch fixed"
            what = f"input {size}, {batch}"
            check = "max |difference| / max |output| on a random batch"
        return (
            f"{self.model} -> {self.path} ({self.format}, {what}, {self.bytes / 1e6:.2f} MB, "
            f"{self.seconds:.1f} s); {check} = {self.relative_difference:.2e} "
            f"(limit {TOLERANCE:g})"
        )


def load_for_export(
    source: str | Path,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    seed: int = 0,
) -> tuple[nn.Module, str, tuple[int, ...], dict]:
    """The model to export, in eval mode and float32: ``(model, name, input_size, kwargs)``.

    ``source`` is MODEL_OR_CHECKPOINT as every command takes it (``cnnlab.model_source``):
    a checkpoint or run directory (its trained weights and recorded input size), or a
    registered model name with named weights, a weights file, or initial weights drawn from
    ``seed``.
    """
    from cnnlab.model_source import load_source

    loaded = load_source(source, weights=weights, weights_file=weights_file, seed=seed)
    model = loaded.model.float().eval()
    if loaded.checkpoint is None:
        return model, str(source), tuple(loaded.input_size), {}
    size = loaded.fed_size or model.default_input_size
    checkpoint = loaded.checkpoint
    return model, checkpoint["model_name"], tuple(size), checkpoint["model_kwargs"]


def export_model(
    source: str | Path,
    format: str = "onnx",
    out: str | Path | None = None,
    *,
    input_size: tuple[int, ...] | None = None,
    dynamic_batch: bool = False,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    seed: int = 0,
) -> ExportResult:
    """Export a registered model or a checkpoint, then check the file against PyTorch.

    Args:
        source: a checkpoint file or run directory, or a registered model name.
        format: ``onnx``, ``torchscript`` or ``safetensors``.
        out: the file to write; default ``NAME.onnx`` (``.torchscript.pt``, ``.safetensors``)
            here for a model name, beside the checkpoint for a checkpoint.
        input_size: ``(C, H, W)`` to trace with; default the checkpoint's or model's own.
        dynamic_batch: leave the batch dimension free (ONNX, TorchScript); the check then
            runs a batch of another size than the one traced.
        weights: named weights for a model name (``IMAGENET1K_V1``, ``cifar10``, ...).
        weights_file: a local weights file for a model name.
        seed: draws a model name's initial weights and the random batches.

    Raises:
        ExportError: the exporter failed, or the exported outputs differ by more than
            ``TOLERANCE`` relative to the largest output (the file is kept for inspection).
        ConfigError: an unknown format, or an option the format does not take.
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    if dynamic_batch and format == "safetensors":
        raise ConfigError(
            "--dynamic-batch applies to onnx and torchscript; safetensors holds weights only"
        )
    model, name, own_size, kwargs = load_for_export(
        source, weights=weights, weights_file=weights_file, seed=seed
    )
    size = tuple(input_size or own_size)
    if len(size) != 3:
        raise ConfigError(f"input size {size} is not C x H x W; write it like 3x224x224")
    path = Path(out) if out else _default_path(source, name, format)
    generator = torch.Generator().manual_seed(seed)
    traced = torch.randn(2 if dynamic_batch else 1, *size, generator=generator)
    check = torch.randn(3 if dynamic_batch else 1, *size, generator=generator)
    with torch.no_grad():
        _forward(model, traced, name)  # a wrong input size fails here, in one line
        expected = _forward(model, check, name)
    if not bool(torch.isfinite(expected).all()):
        raise ExportError(
            f"PyTorch's own output of {name} on a random batch is not finite (its weights "
            "overflow float32, as a very deep net's initial weights can), so no export could "
            "be checked; export a trained checkpoint or --weights"
        )
    inputs = [source, *([weights_file] if weights_file else [])]
    path = check_output(path, OUT_SUFFIXES[format], f"the {format} export", inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if format == "onnx":
        _export_onnx(model, traced, path, dynamic_batch, name)
        seconds = time.perf_counter() - start
        got = _run_onnx(path, check)
    elif format == "torchscript":
        _export_torchscript(model, traced, path, name)
        seconds = time.perf_counter() - start
        got = _forward(_load_torchscript(path), check, name)
    else:
        _export_safetensors(model, path, name, size, kwargs)
        seconds = time.perf_counter() - start
        difference = _safetensors_difference(model, path)
        return _result(path, format, name, size, False, difference, seconds)
    difference = _relative_difference(got, expected)
    result = _result(path, format, name, size, dynamic_batch, difference, seconds)
    if not difference <= TOLERANCE:
        raise ExportError(
            f"the {format} export of {name} differs from PyTorch by {difference:.2e} of the "
            f"largest output (limit {TOLERANCE:g}); the file {path} is kept for inspection"
        )
    return result


def _default_path(source: str | Path, name: str, format: str) -> Path:
    source = Path(source)
    if source.exists():
        folder = source if source.is_dir() else source.parent
        return folder / f"{name}{SUFFIXES[format]}"
    return Path(f"{name}{SUFFIXES[format]}")


def _forward(model, images: torch.Tensor, name: str) -> torch.Tensor:
    try:
        output = model(images)
    except (RuntimeError, ValueError) as error:
        size = "x".join(map(str, images.shape[1:]))
        raise ConfigError(
            f"model '{name}' cannot take a {size} input ({str(error).splitlines()[0][:120]}); "
            "pass --input CxHxW that the model accepts"
        ) from error
    return output.detach().float()


def _relative_difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    if got.shape != expected.shape:
        return float("inf")
    scale = float(expected.abs().max())
    difference = float((got - expected).abs().max())
    return difference / scale if scale > 0 else difference


def _export_onnx(
    model: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool, name: str
) -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it; say so in one line)
    except ImportError as error:
        raise ExportError(
            f"ONNX export needs onnx, onnxscript and onnxruntime ({error}); "
            'pip install "cnnlab[export]"'
        ) from error
    large = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    dynamic = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                dynamic_shapes=dynamic,
                input_names=["images"],
                output_names=["logits"],
                external_data=large > ONNX_SINGLE_FILE_LIMIT,
            )
    except Exception as error:  # the exporter fails in many ways; the user needs one line
        raise ExportError(
            f"torch.onnx.export could not export {name}: "
            f"{type(error).__name__}: {_first_line(error)}"
        ) from error


def _run_onnx(path: Path, images: torch.Tensor) -> torch.Tensor:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (output,) = session.run(["logits"], {"images": images.numpy()})
    return torch.from_numpy(output).float()


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, name: str) -> None:
    """Trace (which follows any Python the forward runs); script when tracing fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape checks, jit's deprecation note
        try:
            module = torch.jit.trace(model, example)
        except Exception as trace_error:
            try:
                module = torch.jit.script(model)
            except Exception:
                raise ExportError(
                    f"torch.jit could neither trace nor script {name}: "
                    f"{type(trace_error).__name__}: {_first_line(trace_error)}"
                ) from trace_error
        torch.jit.save(module, str(path))


def _load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit's deprecation note, on every load
        return torch.jit.load(str(path)).eval()


def _export_safetensors(
    model: nn.Module, path: Path, name: str, size: tuple[int, ...], kwargs: dict
) -> None:
    from safetensors.torch import save_file

    # clone: safetensors refuses tensors that share memory; contiguous: channels_last weights
    tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": "pt",
        "model": name,
        "model_kwargs": json.dumps(kwargs, sort_keys=True),
        "input_size": "x".join(map(str, size)),
    }
    save_file(tensors, str(path), metadata=metadata)


def _safetensors_difference(model: nn.Module, path: Path) -> float:
    """The largest relative difference of any tensor read back (0 when bit-exact)."""
    from safetensors.torch import load_file

    loaded = load_file(str(path))
    state = model.state_dict()
    if loaded.keys() != state.keys():
        return float("inf")
    return max(
        (_relative_difference(loaded[k].float(), v.float()) for k, v in state.items()),
        default=0.0,
    )


def _result(path, format, name, size, dynamic, difference, seconds) -> ExportResult:
    files = [path, path.with_name(path.name + ".data")]
    written = sum(f.stat().st_size for f in files if f.exists())
    return ExportResult(path, format, name, size, dynamic, difference, seconds, written)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else "no message")[:200]
