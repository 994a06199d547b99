"""Export to ONNX, TorchScript and safetensors: one model per family, checked independently.

Each exported file is read back here by its own runtime (onnxruntime, ``torch.jit.load``,
``safetensors.torch.load_file``) and compared with a fresh PyTorch model built from the same
seed, so the test does not rely on the export's own check.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import cnnlab.export as export_module
from cnnlab.checkpoint import save_checkpoint
from cnnlab.cli import main
from cnnlab.errors import ConfigError, ExportError, UnknownNameError
from cnnlab.export import export_model
from cnnlab.models import create_model, list_models
from cnnlab.models._registry import model_entry

# The smallest or cheapest model of each family, at a small input it accepts.
FAMILY_MODELS = {
    "alexnet": ("alexnet", (3, 64, 64)),
    "densenet": ("densenet_bc_100_12", (3, 16, 16)),
    "fractalnet": ("fractalnet20", (3, 32, 32)),
    "googlenet": ("googlenet", (3, 32, 32)),
    "inception": ("inception_v3", (3, 96, 96)),
    "lenet": ("lenet5", (1, 32, 32)),
    "mobilenet": ("mobilenet_v1_025", (3, 32, 32)),
    "preact_resnet": ("preact_resnet18", (3, 32, 32)),
    "resnet": ("resnet20", (3, 16, 16)),
    "resnext": ("resnext50_32x4d", (3, 32, 32)),
    "shufflenet": ("shufflenet_v1_g3_x0_5", (3, 32, 32)),
    "speedrun": ("speedrun_cifar_net", (3, 32, 32)),
    "squeezenet": ("squeezenet1_1", (3, 32, 32)),
    "vgg": ("vgg11", (3, 32, 32)),
    "wide_resnet": ("wrn_16_8", (3, 16, 16)),
    "xception": ("xception", (3, 32, 32)),
    "zfnet": ("zfnet", (3, 64, 64)),
}
CASES = [pytest.param(name, size, id=family) for family, (name, size) in FAMILY_MODELS.items()]
pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_family_has_a_model_here():
    families = {model_entry(name).family for name in list_models()}
    assert families == set(FAMILY_MODELS)


def reference(name: str, size, batch: int = 2) -> tuple[torch.nn.Module, torch.Tensor]:
    """The model as the export built it (seed 0) and a batch the export never saw."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    images = torch.randn(batch, *size, generator=torch.Generator().manual_seed(123))
    return model, images


def assert_close_relative(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) <= 1e-4 * scale


@pytest.mark.slow
@pytest.mark.parametrize(("name", "size"), CASES)
def test_onnx_export_runs_in_onnxruntime_as_in_torch(tmp_path, name, size):
    torch.manual_seed(0)
    result = export_model(name, "onnx", tmp_path / "m.onnx", input_size=size)
    assert result.relative_difference <= 1e-4 and result.bytes == result.path.stat().st_size
    model, images = reference(name, size, batch=1)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    with torch.no_grad():
        assert_close_relative(torch.from_numpy(output), model(images))


@pytest.mark.parametrize(("name", "size"), CASES)
def test_torchscript_export_loads_and_agrees(tmp_path, name, size):
    torch.manual_seed(0)
    result = export_model(name, "torchscript", tmp_path / "m.pt", input_size=size)
    assert result.relative_difference <= 1e-4
    model, images = reference(name, size, batch=1)
    scripted = torch.jit.load(str(result.path)).eval()
    with torch.no_grad():
        assert_close_relative(scripted(images), model(images))


@pytest.mark.parametrize(("name", "size"), CASES)
def test_safetensors_export_holds_the_state_dict_bit_for_bit(tmp_path, name, size):
    torch.manual_seed(0)
    result = export_model(name, "safetensors", tmp_path / "m.safetensors")
    assert result.relative_difference == 0
    model, _ = reference(name, size)
    loaded = load_file(str(result.path))
    state = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())
    with safe_open(str(result.path), "pt") as file:
        assert file.metadata()["model"] == name


def test_dynamic_batch_onnx_takes_any_batch(tmp_path):
    torch.manual_seed(0)
    result = export_model("resnet20", "onnx", tmp_path / "r.onnx", dynamic_batch=True)
    model, images = reference("resnet20", (3, 32, 32), batch=5)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"images": images.numpy()})
    assert output.shape == (5, 10)
    with torch.no_grad():
        assert_close_relative(torch.from_numpy(output), model(images))


def test_checkpoint_exports_its_trained_weights_beside_it(tmp_path, capsys):
    torch.manual_seed(1)
    model = create_model("lenet5", num_classes=10, in_chans=1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1)  # weights no fresh model has
    run = tmp_path / "run"
    state = {
        "model": model.state_dict(),
        "model_name": "lenet5",
        "model_kwargs": {"num_classes": 10, "in_chans": 1},
        "config": {"input_size": None},
        "epoch": 1,
        "step": 1,
    }
    save_checkpoint(state, run / "checkpoint.pt")
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "lenet5 ->" in out and "max |difference| / max |output|" in out
    scripted = torch.jit.load(str(run / "lenet5.torchscript.pt"))
    images = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(scripted(images), model.eval()(images), atol=1e-5)
    # the shared safetensors file loads back into the model by name (--weights-file)
    assert main(["export", str(run), "--format", "safetensors"]) == 0
    shared = run / "lenet5.safetensors"
    out = tmp_path / "again.pt"
    assert (
        main(
            [
                "export",
                "lenet5",
                "--weights-file",
                str(shared),
                "--format",
                "torchscript",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with torch.no_grad():
        assert torch.equal(torch.jit.load(str(out))(images), scripted(images))


def test_a_disagreeing_export_fails_and_keeps_the_file(tmp_path, monkeypatch):
    real = export_module._run_onnx
    monkeypatch.setattr(export_module, "_run_onnx", lambda path, x: real(path, x) * 1.001)
    with pytest.raises(ExportError, match=r"differs from PyTorch by 1\.00e-03"):
        export_model("lenet5", "onnx", tmp_path / "l.onnx")
    assert (tmp_path / "l.onnx").is_file()


def test_a_model_whose_own_output_overflows_is_not_exported(tmp_path, monkeypatch):
    """preact_resnet1001's initial weights give NaN in PyTorch itself: nothing to check."""
    monkeypatch.setattr(
        export_module, "_forward", lambda model, x, name: torch.full((1, 10), float("nan"))
    )
    with pytest.raises(ExportError, match="not finite"):
        export_model("lenet5", "onnx", tmp_path / "l.onnx")
    assert not (tmp_path / "l.onnx").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lenet5", "--format", "safetensors", "--dynamic-batch"], "applies to onnx"),
        (["lenet5", "--input", "1x8x8"], "takes 32x32"),
        (["lenet5", "--input", "32x32x"], "not channels x height x width"),
        (["lenet", "--format", "onnx"], "Did you mean"),
        (["runs/none/checkpoint.pt"], "no checkpoint at runs/none/checkpoint.pt"),
        (["lenet5", "--weights", "IMAGENET1K_V1"], "lenet5"),
    ],
)
def test_unsupported_cases_fail_in_one_line(tmp_path, capsys, argv, message):
    assert main(["export", *argv, "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error and "Traceback" not in error


def test_python_api_refuses_unknown_format_and_names():
    with pytest.raises(ConfigError, match="onnx, torchscript, safetensors"):
        export_model("lenet5", "tflite")
    with pytest.raises(UnknownNameError):
        export_model("lenet6", "safetensors")


def test_onnx_numbers_are_float32(tmp_path):
    torch.manual_seed(0)
    result = export_model("lenet5", "onnx", tmp_path / "l.onnx")
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_inputs()[0].shape == [1, 1, 32, 32]
    (output,) = session.run(None, {"images": np.zeros((1, 1, 32, 32), np.float32)})
    assert output.dtype == np.float32
