"""Turn a finished training run into weights cnnlab ships: ``MODEL.NAME.safetensors`` + provenance.

``python -m cnnlab.publish RUN_DIR --name cifar10`` writes the run's final weights into the
package's weights folder (``cnnlab/weights``), where ``create_model(MODEL, weights=NAME)`` and
``--weights NAME`` find them, with a JSON record of where they came from: the recipe, the full
config, the seed, the metrics of the published epoch, the dataset's classes, mean, std and
stored image size (so ``cnnlab predict`` can prepare a photo without the dataset), and the
sha256 the loader checks.

Written into the package's folder, the weights are then measured as users will load them
(stored precision included) by ``cnnlab evaluate MODEL --weights NAME``, without and with the
recipe's test-time augmentation, in bf16 and in float32; the provenance's ``evaluation`` keeps
those figures and the commands, which the tests repeat.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from cnnlab.checkpoint import load_checkpoint
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.models.weights import OWN_WEIGHTS_DIR, save_weights
from cnnlab.run_metrics import read_metrics

DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def publish_weights(
    run: str | Path,
    name: str,
    folder: str | Path = OWN_WEIGHTS_DIR,
    *,
    dtype: str = "float32",
) -> tuple[Path, Path]:
    """Write a run's weights and their provenance as cnnlab's own weights called ``name``.

    Args:
        run: a run directory (its final ``checkpoint.pt``) or a checkpoint file (e.g. best.pt).
        name: the weights' name users will type (``cifar10``).
        folder: where to write (default: the package's weights folder).
        dtype: ``float32``, or ``bfloat16``/``float16`` to halve a large model's file.

    Returns:
        ``(safetensors file, provenance file)``.
    """
    from cnnlab.data import load_dataset

    if dtype not in DTYPES:
        raise ConfigError(f"dtype '{dtype}' is not one of {', '.join(DTYPES)}")
    path = Path(run)
    checkpoint_path = path / "checkpoint.pt" if path.is_dir() else path
    state = load_checkpoint(checkpoint_path)
    config = state["config"]
    rows = read_metrics(checkpoint_path.parent / "metrics.csv")
    metrics = next((row for row in rows if int(row["epoch"]) == state["epoch"]), {})
    data = load_dataset(config["data"], data_dir=config.get("data_dir"), download=False)
    from cnnlab.models import create_model

    model = create_model(state["model_name"], **state["model_kwargs"])
    provenance = {
        "model_kwargs": state["model_kwargs"],
        "input_size": list(config.get("input_size") or model.default_input_size),  # type: ignore[arg-type]
        "recipe": config.get("recipe"),
        "seed": config.get("seed"),
        "epoch": state["epoch"],
        "metrics": metrics,
        "data": {
            "name": data.name,
            "classes": list(data.classes),
            "mean": list(data.mean),
            "std": list(data.std),
            "image_size": list(data.input_size[1:]),
        },
        "config": config,
        "checkpoint": f"{checkpoint_path.parent.name}/{checkpoint_path.name}",
        "dtype": dtype,
        "torch": torch.__version__,
    }
    paths = save_weights(
        state["model_name"], name, state["model"], provenance, folder, dtype=DTYPES[dtype]
    )
    if Path(folder).resolve() == OWN_WEIGHTS_DIR.resolve():  # where evaluate finds them by name
        record = json.loads(paths[1].read_text())
        record["evaluation"] = measure_weights(state["model_name"], name, config)
        paths[1].write_text(json.dumps(record, indent=2, default=str) + "\n")
    return paths


def measure_weights(model: str, name: str, config: dict) -> dict:
    """Test top-1/top-5 of shipped weights by ``cnnlab evaluate``, without and with the
    recipe's test-time augmentation, in bf16 and in float32 (``evaluate`` takes float32 where
    bf16 is only emulated), with the commands that repeat each figure."""
    from cnnlab.evaluation import evaluate
    from cnnlab.training.recipes import get_recipe

    modes = ["none"]
    recipe_tta = get_recipe(config["recipe"]).tta if config.get("recipe") else "none"
    if recipe_tta != "none":
        modes.append(recipe_tta)
    measured: dict = {}
    for precision, flag in (("bf16", "--amp"), ("fp32", "--no-amp")):
        figures: dict = {"top1": {}, "top5": {}, "commands": {}}
        for tta in modes:
            result = evaluate(
                model,
                weights=name,
                data=config["data"],
                data_dir=config.get("data_dir"),
                tta=tta,
                amp=precision == "bf16",
            )
            figures["top1"][tta], figures["top5"][tta] = result.top1, result.top5
            flags = f"--data {config['data']} --data-dir DIR {flag}" + (
                "" if tta == "none" else f" --tta {tta}"
            )
            figures["commands"][tta] = f"cnnlab evaluate {model} --weights {name} {flags}"
            measured["images"] = result.images
        measured[precision] = figures
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.publish",
        description="Package a finished run's weights as cnnlab's own (safetensors + provenance).",
    )
    parser.add_argument("run", help="run directory (its final checkpoint.pt) or checkpoint file")
    parser.add_argument("--name", required=True, help="weights name, e.g. cifar10")
    parser.add_argument("--out", default=str(OWN_WEIGHTS_DIR), help="folder (default: package's)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    args = parser.parse_args(argv)
    try:
        weights, record = publish_weights(args.run, args.name, args.out, dtype=args.dtype)
    except CnnlabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"weights -> {weights}\nprovenance -> {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
