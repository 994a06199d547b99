"""The names the README uses from ``import cnnlab`` are there and stay callable."""

import importlib
import inspect

import cnnlab


def test_every_export_resolves_and_is_listed():
    for name in cnnlab.__all__:
        assert getattr(cnnlab, name) is not None
        assert name in dir(cnnlab)


def test_train_and_evaluate_are_plain_functions_after_their_modules_are_imported(tmp_path):
    importlib.import_module("cnnlab.training.engine")
    importlib.import_module("cnnlab.evaluation")
    assert inspect.isfunction(cnnlab.train) and inspect.isfunction(cnnlab.evaluate)
    result = cnnlab.train(model="lenet5", epochs=1, out=str(tmp_path / "run"), device="cpu")
    assert len(result.metrics) == 1 and (tmp_path / "run" / "best.pt").exists()
    evaluation = cnnlab.evaluate(tmp_path / "run" / "best.pt", device="cpu")
    assert evaluation.images == 360
    # the engine scores in bf16 where the CPU has it, evaluate in float32: a few images may differ
    assert abs(evaluation.top1 - result.final["test_top1"]) < 1.5
