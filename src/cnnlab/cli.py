"""The ``cnnlab`` command: parses arguments, calls the library, prints. No logic lives here.

Each command is one ``_add_<command>`` function that declares its arguments and points
``handler`` at a ``_run_<command>`` function; ``COMMANDS`` lists them in the order ``--help``
shows them. A ``CnnlabError`` is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from cnnlab import __version__
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.outputs import check_output_path

console = Console()
err_console = Console(stderr=True)


def _say(text: str, *, err: bool = False) -> None:
    """Print a message as written: no syntax colouring of numbers and paths, and no line breaks
    at the terminal's width, so that piped output and logs keep one line per line."""
    (err_console if err else console).print(text, highlight=False, soft_wrap=True)


# Options several commands share, declared once with one default each. ``--data`` left out
# means the command's own source: the recipe's (train), the checkpoint's (evaluate, landscape).
_SHARED_OPTIONS: dict[str, dict] = {
    "--data": dict(help="dataset: digits, mnist, cifar10, folder:PATH, synthetic, ..."),
    "--data-dir": dict(help="where the dataset lives (default $CNNLAB_DATA or ~/.cache)"),
    "--device": dict(default="auto", help="auto (cuda when available), cpu, cuda or cuda:N"),
    "--out": dict(help="where to write"),
    "--seed": dict(type=int, default=0, help="random seed (default 0)"),
    "--threads": dict(type=int, help="CPU threads (default: the recipe's or torch's)"),
    "--weights": dict(
        help="with a model name: named weights, e.g. IMAGENET1K_V1, DEFAULT or cifar10 (see the "
        "Weights column of `cnnlab models`)"
    ),
    "--weights-file": dict(
        metavar="PATH",
        help="with a model name: a local state dict, cnnlab checkpoint or safetensors file",
    ),
}

_MODEL_OR_CHECKPOINT = (
    "a checkpoint file or run directory, or a registered model name (with --weights or "
    "--weights-file for pretrained weights; initial weights without)"
)


def _shared(*names: str, out: str | None = None) -> argparse.ArgumentParser:
    """A parent parser (``parents=[...]``) holding the shared options ``names``; ``out`` says
    what ``--out`` writes by default for this command."""
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        options = _SHARED_OPTIONS[name]
        if name == "--out" and out:
            options = {**options, "help": out}
        parent.add_argument(name, **options)
    return parent


def _options(args: argparse.Namespace, *names: str) -> dict:
    """The parsed options ``names`` as keyword arguments of the same names, for the library
    functions whose keywords are the command's options."""
    return {name: getattr(args, name) for name in names}


def _device(name: str) -> str:
    """``auto`` made concrete, and a CUDA device that is not there refused in one line, for the
    functions that take a torch device (the check `train` makes: one function for all)."""
    from cnnlab.machine import resolve_device

    return resolve_device(name)


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (and exit status 2), like CnnlabError."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models with parameters and MACs",
        description="List the registered models, grouped by family: parameters, MACs at the "
        "default input size, input size and paper.",
    )
    p.add_argument("pattern", nargs="?", help="shell wildcard, e.g. 'resnet*'")
    p.set_defaults(handler=_run_models)


def _run_models(args) -> None:
    from cnnlab.sizing.zoo_table import models_table

    _print_wide(models_table(args.pattern))


def _print_wide(renderable) -> None:
    """Print a wide table; when the output is a file or a pipe, don't squeeze it to 80 columns."""
    wide = console if console.is_terminal else Console(width=200)
    wide.print(renderable)


_SUMMARY_CONVENTION = """\
Counting convention: MACs are the multiply-accumulates of conv and linear layers (and of other
matrix products, e.g. attention), bias not counted; FLOPs = 2 x MACs. Activation memory counts
the input plus the outputs of conv, pool and fc layers (the lecture's VGG-16 table), float32,
MB = 10^6 bytes; --all-activations counts every layer's output (ReLU, BN, ...) too. Training
memory (SGD with momentum) = parameters + gradients + momentum + activations. Shapes are
C x H x W of one example; MACs and activations are for the whole batch."""


def _add_summary(sub) -> None:
    from cnnlab.nn.spec_grammar import GRAMMAR

    p = sub.add_parser(
        "summary",
        help="size a model or a spec layer by layer: shapes, parameters, MACs, memory",
        description="Size a registered model or a sequential spec layer by layer: output shape, "
        "kernel/stride/padding, parameters, MACs, output elements, receptive field and jump; "
        "then totals. Nothing is allocated (the meta device).",
        epilog=f"{_SUMMARY_CONVENTION}\n\n{GRAMMAR}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model", metavar="NAME_OR_SPEC", help="a model name (see `cnnlab models`) or a spec"
    )
    p.add_argument(
        "--input",
        metavar="CxHxW",
        help="input size of one example, e.g. 3x224x224 (default: the model's own; 3x224x224 "
        "for a spec)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="examples per batch (default 1)")
    p.add_argument(
        "--depth", type=int, help="show modules down to this nesting depth, deeper ones summed"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--all-activations",
        action="store_true",
        help="count every layer's output (ReLU, BN, ...) in the activation memory",
    )
    p.set_defaults(handler=_run_summary)


def _run_summary(args) -> None:
    import warnings

    from cnnlab.sizing import GeometryWarning, parse_input_size, summary

    input_size = parse_input_size(args.input) if args.input else None
    with warnings.catch_warnings():  # the summary lists them under its table
        warnings.simplefilter("ignore", GeometryWarning)
        result = summary(
            args.model,
            input_size=input_size,
            **_options(args, "batch_size", "depth", "all_activations"),
        )
    if args.json:
        print(result.to_json())
    else:
        _print_wide(result)


def _add_optimizers(sub) -> None:
    p = sub.add_parser(
        "optimizers",
        help="list the optimizers: order, state memory, defaults, source",
        description="List the registered optimizers (first- and second-order): their order, the "
        "state they keep per parameter, their default hyperparameters and where they come from.",
    )
    p.set_defaults(handler=_run_optimizers)


def _run_optimizers(args) -> None:
    from cnnlab.optim.tables import optimizers_table

    console.print(optimizers_table())


def _add_optim_lab(sub) -> None:
    p = sub.add_parser(
        "optim-lab",
        help="race optimizers on a 2-D test function: contour plot, GIF, table",
        description="Run optimizers on a 2-D test function and draw their trajectories over its "
        "contours (PNG, optionally an animated GIF), with a table of how close each got. "
        "Functions: ravine, rosenbrock, beale, himmelblau, saddle, rastrigin, cliff.",
    )
    p.add_argument(
        "function", help="ravine, rosenbrock, beale, himmelblau, saddle, rastrigin, cliff"
    )
    p.add_argument(
        "--optimizers",
        help="comma-separated names (default: the function's own race, e.g. "
        "sgd,momentum,adagrad,rmsprop,adam,newton,bfgs)",
    )
    p.add_argument("--steps", type=int, help="steps per optimizer (default: per function)")
    p.add_argument("--lr", help="learning rate for all (0.01) or per optimizer (sgd=0.1,adam=0.05)")
    p.add_argument("--start", help="start point x,y (default: per function)")
    p.add_argument(
        "--clip", type=float, help="also run every optimizer with gradient-norm clipping at this"
    )
    p.add_argument("--gif", action="store_true", help="also write an animated GIF")
    p.add_argument("--out", help="PNG path (default: optim_lab_FUNCTION.png)")
    p.set_defaults(handler=_run_optim_lab)


def _run_optim_lab(args) -> None:
    from cnnlab.optim.lab import parse_lrs, parse_start, run_lab
    from cnnlab.optim.tables import lab_table
    from cnnlab.viz.optim_lab import animate_lab, plot_lab

    optimizers = args.optimizers.split(",") if args.optimizers is not None else None
    result = run_lab(
        args.function,
        optimizers,
        steps=args.steps,
        lrs=parse_lrs(args.lr),
        start=parse_start(args.start),
        clip=args.clip,
    )
    console.print(lab_table(result))
    png = plot_lab(result, args.out or f"optim_lab_{result.function.name}.png")
    console.print(f"trajectories: {png}")
    if args.gif:
        console.print(f"animation: {animate_lab(result, png.with_suffix('.gif'))}")


def _add_datasets(sub) -> None:
    p = sub.add_parser(
        "datasets",
        parents=[_shared("--data-dir")],
        help="list the datasets, or load one (decoding and caching it) and describe it",
        description="Without NAME: list the dataset names. With NAME: load it from --data-dir "
        "(decoding it once into the on-disk cache) and show its splits, classes, mean and std.",
    )
    p.add_argument("name", nargs="?", help="dataset to load, e.g. digits, cifar10, folder:PATH")
    p.add_argument("--no-download", action="store_true", help="never try to download")
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave unreadable image files of a folder dataset out (they are listed)",
    )
    p.set_defaults(handler=_run_datasets)


def _run_datasets(args) -> None:
    from cnnlab.data import load_dataset
    from cnnlab.data.tables import dataset_table, datasets_table

    if args.name is None:
        console.print(datasets_table())
        return
    dataset = load_dataset(
        args.name,
        download=not args.no_download,
        **_options(args, "data_dir", "skip_bad_images"),
    )
    console.print(dataset_table(dataset))


def _comma_floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        message = f"expected numbers separated by commas, got '{text}'"
        raise argparse.ArgumentTypeError(message) from None


def _key_value(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key.strip(), yaml.safe_load(value)


def _add_train(sub) -> None:
    from cnnlab.training.config import LOSSES_ON_NONFINITE, MILESTONE_UNITS, SCHEDULES

    p = sub.add_parser(
        "train",
        parents=[
            _shared(
                *("--data", "--data-dir", "--device", "--out", "--seed", "--threads"),
                out="run directory (default runs/MODEL-DATA-TIMESTAMP)",
            )
        ],
        help="train a model with a paper's recipe (e.g. `train lenet5`: LeNet-5 on the bundled "
        "digits)",
        description="Train MODEL on a dataset with a paper's recipe; flags override the recipe. "
        "Writes runs/NAME/ (or --out): config.yaml, metrics.csv, checkpoint.pt, best.pt, "
        "curves.png. `--config runs/NAME/config.yaml` trains that run again (flags given with "
        "it still override). Under `torchrun --nproc_per_node N` the same command trains on N "
        "processes.",
    )
    p.add_argument(
        "model",
        nargs="?",
        help="registered model name, e.g. lenet5 (see `cnnlab models`); required unless "
        "--config names one",
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        help="a training config file (e.g. a run's config.yaml) instead of the recipe",
    )
    p.add_argument("--recipe", help="paper recipe (see `cnnlab recipes`)")

    data = p.add_argument_group("data")
    data.add_argument("--input-size", type=int, nargs=3, metavar=("C", "H", "W"))
    data.add_argument("--augment", help="default, none, crop, flip, crop+flip, inception, vgg, ...")
    data.add_argument(
        "--small-crop",
        type=int,
        metavar="PIXELS",
        help="train the first --small-crop-epochs epochs on random PIXELS x PIXELS crops: "
        "cheaper early steps (e.g. 28 on CIFAR's 32x32 costs about 0.7 of a full step)",
    )
    data.add_argument(
        "--small-crop-epochs", type=int, metavar="N", help="epochs on --small-crop crops (0: none)"
    )
    data.add_argument("--batch-size", type=int, help="global batch size (all processes)")
    data.add_argument(
        "--micro-batch",
        type=int,
        metavar="N",
        help="forward and backward N images at a time, gradients summed into one step of the "
        "whole batch: a batch larger than memory allows; BatchNorm then normalises each N "
        "(ghost batch norm)",
    )

    model = p.add_argument_group("model")
    model.add_argument("--model-arg", action="append", type=_key_value, metavar="KEY=VALUE")
    model.add_argument(
        "--init-weights",
        metavar="NAME_OR_FILE",
        help="start from trained weights: a weights name (IMAGENET1K_V1, DEFAULT, cifar10) or a "
        "state dict, checkpoint or safetensors file; a new classifier if the classes differ",
    )
    model.add_argument(
        "--freeze-until",
        metavar="LAYER",
        help="freeze LAYER and every layer before it (module names as `cnnlab summary` shows); "
        "frozen layers stay in eval mode",
    )
    on_off = argparse.BooleanOptionalAction
    model.add_argument(
        "--whitening", action=on_off, help="init the first conv to whiten patches, frozen"
    )
    model.add_argument(
        "--whitening-bias-epochs", type=int, metavar="N", help="train its bias N epochs only"
    )
    model.add_argument("--dirac-init", action=on_off, help="partial identity init of the convs")
    model.add_argument("--freeze-norm-weights", action=on_off, help="BatchNorm scales fixed")

    optimisation = p.add_argument_group("optimisation")
    optimisation.add_argument("--optimizer", help="see `cnnlab optimizers`")
    optimisation.add_argument("--lr", type=float, help="learning rate")
    optimisation.add_argument("--momentum", type=float)
    optimisation.add_argument("--weight-decay", type=float)
    optimisation.add_argument(
        "--no-decay-norm-bias",
        dest="decay_norm_and_bias",
        action="store_const",
        const=False,
        help="no weight decay on biases and normalisation parameters",
    )
    optimisation.add_argument(
        "--optimizer-arg", action="append", type=_key_value, metavar="KEY=VALUE"
    )
    optimisation.add_argument("--clip", type=float, metavar="NORM", help="clip the gradient norm")
    optimisation.add_argument(
        "--ema", type=float, metavar="DECAY", help="EMA of the weights, e.g. 0.999"
    )
    optimisation.add_argument(
        "--norm-bias-lr-scale", type=float, metavar="X", help="BatchNorm shifts' rate x X"
    )
    optimisation.add_argument(
        "--lookahead", type=float, metavar="DECAY", help="lookahead weights, e.g. 0.95"
    )
    optimisation.add_argument("--lookahead-every", type=int, metavar="STEPS")

    schedule = p.add_argument_group("schedule")
    schedule.add_argument("--epochs", type=int)
    schedule.add_argument("--schedule", choices=SCHEDULES)
    schedule.add_argument("--milestones", type=_comma_floats, help="e.g. 32000,48000 or 60,120,160")
    schedule.add_argument("--milestone-unit", choices=MILESTONE_UNITS)
    schedule.add_argument("--gamma", type=float, help="rate factor at each step/milestone/plateau")
    schedule.add_argument("--step-size", type=float, help="epochs (or iterations) between steps")
    schedule.add_argument("--patience", type=int, help="plateau: epochs without improvement")
    schedule.add_argument("--warmup-epochs", type=float, help="linear warm-up before the schedule")
    schedule.add_argument("--warmup-start", type=float, help="rate factor the warm-up starts at")
    schedule.add_argument("--lr-end-factor", type=float, help="linear schedule: final factor")
    schedule.add_argument(
        "--warmup-until-error",
        type=float,
        metavar="PCT",
        help="ResNet-110's warm-up: 0.1x rate until training error < PCT%%",
    )

    loss = p.add_argument_group("loss and regularisation")
    loss.add_argument("--loss", help="cross_entropy, hinge, huber, kl, mae, mse, lenet_rbf")
    loss.add_argument("--label-smoothing", type=float)
    loss.add_argument("--on-nonfinite", choices=LOSSES_ON_NONFINITE)

    run = p.add_argument_group("run and output")
    run.add_argument("--log-every", type=int, help="steps between progress-bar updates")
    run.add_argument(
        "--save-trajectory",
        action="store_const",
        const=True,
        help="keep every epoch's weights in RUN/trajectory/ (the path `cnnlab lab` draws)",
    )

    hardware = p.add_argument_group("hardware")
    hardware.add_argument("--amp", action=argparse.BooleanOptionalAction, help="bf16 autocast")
    hardware.add_argument(
        "--eval-amp",
        action=argparse.BooleanOptionalAction,
        help="test each epoch in bf16 autocast (default: as training)",
    )
    hardware.add_argument("--channels-last", action=argparse.BooleanOptionalAction)
    hardware.add_argument("--compile", action="store_const", const=True, help="torch.compile")
    run.add_argument(
        "--skip-bad-images",
        action="store_const",
        const=True,
        help="leave unreadable image files of a folder dataset out (their count is printed)",
    )
    p.set_defaults(handler=_run_train, out_is_directory=True)


def _config_defaults(path: str) -> dict:
    """The settings a config file gives, as `cnnlab train`'s argument defaults.

    They take the place of the recipe's where both set a value, and flags given with
    ``--config`` still override them. A run's own ``config.yaml`` sets every value, so the run
    is repeated exactly.
    """
    import yaml

    from cnnlab.training.config import TrainConfig

    config = TrainConfig.load_yaml(path)  # unknown keys and bad values: a ConfigError
    given = yaml.safe_load(Path(path).read_text())
    values = {key: getattr(config, key) for key in given}
    values["model_arg"] = list(values.pop("model_kwargs", {}).items()) or None
    values["optimizer_arg"] = list(values.pop("optimizer_args", {}).items()) or None
    return values


def _run_train(args) -> None:
    from cnnlab.runs import train
    from cnnlab.training import resolve_config

    if args.model is None:
        raise ConfigError(
            "give a model to train, e.g. `cnnlab train lenet5` (see `cnnlab models`), or "
            "--config FILE"
        )
    skip = ("command", "handler", "model", "recipe", "config", "out_is_directory")
    options = {k: v for k, v in vars(args).items() if k not in skip}
    options["optimizer_args"] = dict(options.pop("optimizer_arg") or []) or None
    options["model_kwargs"] = dict(options.pop("model_arg") or []) or None
    config = resolve_config(args.model, args.recipe, **options)
    if args.small_crop is not None and not config.small_crop_epochs:
        raise ConfigError(
            f"--small-crop {args.small_crop} needs --small-crop-epochs N: how many of the first "
            "epochs train on the small crops"
        )
    if args.recipe is None and args.config is None and os.environ.get("RANK", "0") == "0":
        from cnnlab.training.recipes import recipe_note  # said once, by torchrun's rank 0

        _say(recipe_note(config.model, args.data, config.recipe))
    _train_until_interrupted(lambda: train(config, console=console))


def _train_until_interrupted(run) -> None:
    """Run the training, then say in words what its curves show; Ctrl-C exits with 130."""
    from cnnlab.training import TrainingInterrupted
    from cnnlab.viz.diagnosis import diagnose_run

    try:
        result = run()
    except TrainingInterrupted as stop:
        _say(f"interrupted: {stop}", err=True)
        raise SystemExit(130) from None
    if result.metrics:  # only the main process of a distributed run reads them
        _say(diagnose_run(result.run_dir).text)


def _add_resume(sub) -> None:
    p = sub.add_parser(
        "resume",
        help="continue a training run from its last checkpoint",
        description="Continue the run in RUN_DIR exactly where its last checkpoint left it.",
    )
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("--epochs", type=int, help="train to this many epochs in total")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument(
        "--data-dir",
        help="where the run's dataset is now, if it moved (e.g. another machine); for a "
        "folder:PATH dataset, the folder itself (holding train/ and val/)",
    )
    p.set_defaults(handler=_run_resume)


def _run_resume(args) -> None:
    from cnnlab.runs import resume

    _train_until_interrupted(
        lambda: resume(
            args.run_dir,
            epochs=args.epochs,
            device=args.device,
            data_dir=args.data_dir,
            console=console,
        )
    )


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[_shared("--data", "--data-dir", "--device", "--weights", "--weights-file")],
        help="top-1/top-5 of checkpoints, with test-time augmentation and ensembles",
        description="Top-1 and top-5 accuracy and error of a checkpoint; several checkpoints are "
        "averaged as an ensemble (softmax mean).",
    )
    p.add_argument(
        "checkpoints", nargs="+", metavar="MODEL_OR_CHECKPOINT", help=_MODEL_OR_CHECKPOINT
    )
    p.add_argument(
        "--tta",
        default="none",
        help="test-time augmentation: none, flip (mirror), tencrop (AlexNet), multiscale (VGG), "
        "flipshift (mirror + 1-pixel shifts, Jordan 2024) or flipshift-adaptive (the shifts only "
        "for images the mirror pair leaves unsure)",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--ema", action="store_true", help="use the EMA weights")
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        help="bf16 autocast or not (default: the precision the run tested in, as metrics.csv; "
        "float32 where the device only emulates bf16)",
    )
    p.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> None:
    from rich.table import Table

    from cnnlab.evaluation import evaluate

    result = evaluate(
        args.checkpoints,
        use_ema=args.ema,
        **_options(args, "data", "data_dir", "tta", "device", "batch_size"),
        **_options(args, "weights", "weights_file", "amp"),
    )
    several = len(result.checkpoints) > 1
    kind = f"ensemble of {len(result.checkpoints)}" if several else result.checkpoints[0]
    _say(
        f"{kind} on {result.data} test split ({result.images} images), tta {result.tta}, "
        f"precision {result.precision}"
    )
    if args.amp is None and result.precision != result.recorded_precision:
        _say(
            f"(tested in {result.recorded_precision} when recorded; this device only emulates "
            "bf16, many times slower: --amp to repeat the recorded figures exactly)"
        )
    table = Table()
    for column in ("", "accuracy", "error"):
        table.add_column(column, justify="right")
    table.add_row("top-1", f"{result.top1:.2f}%", f"{result.top1_error:.2f}%")
    table.add_row("top-5", f"{result.top5:.2f}%", f"{result.top5_error:.2f}%")
    console.print(table)


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        parents=[_shared("--weights", "--weights-file", "--device")],
        help="class names and probabilities for your own images",
        description="Classify image files with a checkpoint or a pretrained model: the most "
        "probable classes with their probabilities. Each image is prepared as the model's "
        "training data was: a run's dataset size, mean and std; ImageNet weights' own "
        "transforms (shorter side 256, centre crop 224, ImageNet mean and std).",
    )
    p.add_argument("source", metavar="MODEL_OR_CHECKPOINT", help=_MODEL_OR_CHECKPOINT)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--top", type=int, default=5, help="classes shown per image (default 5)")
    p.add_argument(
        "--tta", default="none", help="test-time augmentation, as for evaluate (e.g. tencrop)"
    )
    p.set_defaults(handler=_run_predict)


def _run_predict(args) -> None:
    from cnnlab.evaluation import predict

    predictions, how = predict(
        args.source,
        args.images,
        device=_device(args.device),
        **_options(args, "weights", "weights_file", "top", "tta"),
    )
    _say(how)
    for prediction in predictions:
        _say(f"{prediction.image}:")
        for index, name, probability in prediction.top:
            label = name if name == str(index) else f"{name} ({index})"
            _say(f"  {100 * probability:6.2f}%  {label}")


def _add_recipes(sub) -> None:
    p = sub.add_parser(
        "recipes",
        help="list the papers' training recipes",
        description="List the training recipes; with a NAME, show what the paper did.",
    )
    p.add_argument("name", nargs="?", help="show one recipe's details")
    p.set_defaults(handler=_run_recipes)


def _run_recipes(args) -> None:
    import inspect

    import yaml

    from cnnlab.training.recipes import get_recipe, recipes_table

    if args.name is None:
        _print_wide(recipes_table())
        return
    entry = get_recipe(args.name)
    _say(f"[bold]{entry.name}[/] ({entry.paper}, {entry.model})")
    _say(inspect.cleandoc(entry.details))
    _say(yaml.safe_dump(entry.settings, sort_keys=False).strip())


def _add_filters(sub) -> None:
    p = sub.add_parser(
        "filters",
        parents=[_shared("--weights", "--weights-file")],
        help="draw a model's learned kernels (the first conv layer in colour, like AlexNet's)",
        description="Draw the kernels of a conv layer as an image grid: the first layer's as "
        "colour (or grey) pictures, each min-max normalised on its own (Krizhevsky et al. 2012, "
        "Fig. 3); a deeper layer's as one grey tile per (filter, input channel) slice.",
    )
    p.add_argument("checkpoint", metavar="MODEL_OR_CHECKPOINT", help=_MODEL_OR_CHECKPOINT)
    p.add_argument("--layer", help="conv layer's module name (default: the first conv layer)")
    p.add_argument("--out", help="PNG path (default: next to the checkpoint)")
    p.set_defaults(handler=_run_filters)


def _run_filters(args) -> None:
    from cnnlab.viz.filters import save_filter_picture

    path, grid = save_filter_picture(
        args.checkpoint,
        args.layer,
        args.out,
        **_options(args, "weights", "weights_file"),
    )
    (filters, channels), (all_filters, all_channels) = grid.shown, grid.total
    kh, kw = grid.tile
    _say(
        f"{grid.layer}: {all_filters} filters of {kh}×{kw}×{all_channels}, drew "
        f"{filters} × {channels if grid.per_channel else all_channels} channel(s) -> {path}"
    )


def _add_features(sub) -> None:
    p = sub.add_parser(
        "features",
        parents=[_shared("--weights", "--weights-file")],
        help="draw the feature maps of chosen layers for one image",
        description="Run one image through a model and draw the output maps of chosen layers "
        "(default: the first, a middle and the last conv layer).",
    )
    p.add_argument("checkpoint", metavar="MODEL_OR_CHECKPOINT", help=_MODEL_OR_CHECKPOINT)
    p.add_argument("image", help="PNG or JPEG, resized to the model's input size")
    p.add_argument("--layers", help="comma-separated module names, e.g. features.c1,features.c3")
    p.add_argument("--out", help="PNG path (default: next to the checkpoint)")
    p.set_defaults(handler=_run_features)


def _run_features(args) -> None:
    from cnnlab.viz.features import save_feature_maps

    layers = [name.strip() for name in args.layers.split(",")] if args.layers else None
    path, maps, stats = save_feature_maps(
        args.checkpoint,
        args.image,
        layers,
        args.out,
        **_options(args, "weights", "weights_file"),
    )
    _say(f"image normalised with the mean and std of {stats.source}")
    for name, layer_maps in maps.items():
        _say(
            f"  {name}: {tuple(layer_maps.shape)}, mean {float(layer_maps.mean()):.3f}, "
            f"max {float(layer_maps.max()):.3f}"
        )
    _say(f"feature maps -> {path}")


def _add_convolve(sub) -> None:
    p = sub.add_parser(
        "convolve",
        help="convolve an image with the lectures' Sobel or blob kernel",
        description="Cross-correlate a grey image with a classic fixed kernel, as the lectures "
        "show convolution: sobel-v (vertical edges), sobel-h (horizontal edges), blob (the 9×9 "
        "centre-surround blob detector). No padding: N×N * F×F gives (N-F+1)×(N-F+1).",
    )
    p.add_argument("image", help="PNG or JPEG (read as grey)")
    p.add_argument("--filter", required=True, help="sobel-v, sobel-h or blob")
    p.add_argument("--out", help="PNG path (default: IMAGE-STEM_FILTER.png here)")
    p.set_defaults(handler=_run_convolve)


def _run_convolve(args) -> None:
    from cnnlab.viz.features import save_convolution

    path, response = save_convolution(args.image, args.filter, args.out)
    _say(
        f"{args.filter}: response {response.shape[0]}×{response.shape[1]}, "
        f"min {float(response.min()):.3f}, max {float(response.max()):.3f}, "
        f"mean |response| {float(response.abs().mean()):.3f} -> {path}"
    )


def _add_saliency(sub) -> None:
    p = sub.add_parser(
        "saliency",
        parents=[_shared("--weights", "--weights-file")],
        help="saliency, guided backprop, deconvnet and occlusion maps for the top class",
        description="For one image's top class: gradient saliency (Simonyan et al. 2013), guided "
        "backpropagation (Springenberg et al. 2014), deconvnet (Zeiler & Fergus 2014) and "
        "occlusion sensitivity (a grey square slid over the image).",
    )
    p.add_argument("checkpoint", metavar="MODEL_OR_CHECKPOINT", help=_MODEL_OR_CHECKPOINT)
    p.add_argument("image", help="PNG or JPEG, resized to the model's input size")
    p.add_argument("--target", type=int, help="class index to explain (default: the top class)")
    p.add_argument("--out", help="PNG path (default: next to the checkpoint)")
    p.set_defaults(handler=_run_saliency)


def _run_saliency(args) -> None:
    from cnnlab.viz.saliency import save_saliency

    path, maps, class_name = save_saliency(
        args.checkpoint,
        args.image,
        args.out,
        args.target,
        **_options(args, "weights", "weights_file"),
    )
    peak = divmod(int(maps.occlusion.argmax()), maps.occlusion.shape[1])
    _say(
        f"class {class_name}, p = {maps.probability:.3f}; occlusion hurts most at "
        f"(y, x) = {peak} (drop {float(maps.occlusion.max()):.3f}) -> {path}"
    )
    if maps.skipped:
        _say(maps.skipped)


def _add_landscape(sub) -> None:
    p = sub.add_parser(
        "landscape",
        parents=[
            _shared(
                *("--data", "--data-dir", "--device", "--seed", "--out"),
                out="PNG path (default: next to the checkpoint)",
            )
        ],
        help="loss landscape around a checkpoint (filter-normalised directions, Li et al. 2018)",
        description="Evaluate the loss on a grid around the trained weights along two random "
        "filter-normalised directions (Li et al. 2018; biases and BN parameters fixed, BN in "
        "eval mode): 1-D slice, 2-D contour and 3-D surface, with the share of non-convex "
        "points and a roughness number.",
    )
    p.add_argument("checkpoint", help="checkpoint file or run directory")
    p.add_argument("--grid", type=int, default=21, help="points per axis (default 21)")
    p.add_argument("--span", type=float, default=1.0, help="grid covers [-SPAN, SPAN] (1.0)")
    p.add_argument("--batches", type=int, default=4, help="training batches scored (default 4)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.set_defaults(handler=_run_landscape)


def _run_landscape(args) -> None:
    from cnnlab.viz.landscape import save_landscape

    path, landscape = save_landscape(
        args.checkpoint,
        args.data,
        device=_device(args.device),
        **_options(args, "grid", "span", "batches", "batch_size", "seed", "data_dir", "out"),
    )
    _say(landscape.describe())
    _say(f"landscape -> {path}")


def _add_gradflow(sub) -> None:
    p = sub.add_parser(
        "gradflow",
        parents=[
            _shared(
                *("--data", "--data-dir", "--device", "--seed", "--out"),
                out="PNG path (default: gradflow.png here)",
            )
        ],
        help="per-layer gradient norms through depth, several models overlaid",
        description="One batch forward and backward; the norm of each conv/linear layer's "
        "weight gradient from input to output, one line per model (log scale), e.g. "
        "`cnnlab gradflow plain56 resnet56 --data synthetic`.",
    )
    p.add_argument("sources", nargs="+", metavar="CHECKPOINT_OR_MODEL")
    p.add_argument("--batch-size", type=int, default=32, help="images in the batch (32)")
    p.set_defaults(handler=_run_gradflow)  # no --data: a run's own, else random images


def _run_gradflow(args) -> None:
    from rich.table import Table

    from cnnlab.viz.gradflow import save_gradflow

    path, flows = save_gradflow(
        args.sources,
        args.data,
        device=_device(args.device),
        **_options(args, "batch_size", "seed", "data_dir", "out"),
    )
    table = Table(title="weight-gradient norms")
    for column in ("model", "layers", "first layer", "last layer", "first / last", "loss"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for flow in flows:
        table.add_row(
            flow.label,
            str(len(flow.norms)),
            f"{flow.norms[0]:.3g}",
            f"{flow.norms[-1]:.3g}",
            f"{flow.first_to_last:.3g}",
            f"{flow.loss:.3f}",
        )
    _print_wide(table)
    _say(f"gradient flow -> {path}")


def _add_plot(sub) -> None:
    from cnnlab.viz.curves import METRICS

    p = sub.add_parser(
        "plot",
        help="training curves of one or several runs, overlaid, with a diagnosis",
        description="Draw top-1 error and loss against epochs for one or several run directories "
        "in one picture (training dashed, test solid, as the ResNet paper's CIFAR figures); "
        "learning-rate steps are marked. Then say what each run's curves show.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or metrics.csv)")
    p.add_argument("--out", default="curves.png", help="PNG path (default curves.png)")
    p.add_argument("--metric", choices=METRICS, default="both", help="panels to draw")
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        type=_labelled_error,
        metavar="LABEL=ERROR",
        help="a horizontal line at a top-1 error (%%) on the error panel, e.g. the paper's "
        "final test error: --reference 'He et al. 2016=8.75' (repeatable)",
    )
    p.set_defaults(handler=_run_plot)


def _labelled_error(text: str) -> tuple[str, float]:
    label, _, value = text.rpartition("=")
    try:
        error = float(value)
    except ValueError:
        error = -1.0
    if not label or not 0 <= error <= 100:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not LABEL=ERROR with an error in percent, e.g. 'He et al. 2016=8.75'"
        )
    return label, error


def _run_plot(args) -> None:
    from cnnlab.viz.curves import plot_runs
    from cnnlab.viz.diagnosis import diagnose_run

    _say(f"curves: {plot_runs(args.runs, args.out, args.metric, args.reference)}")
    for run in args.runs:
        _say(diagnose_run(run).text)


def _add_diagnose(sub) -> None:
    p = sub.add_parser(
        "diagnose",
        help="say in words what a run's cost curves show (lr too high/low, overfitting, ...)",
        description="Read a run's metrics.csv and say what its curves show: diverging (learning "
        "rate too high), oscillating, plateau from the start (too low), stalled (fell a little, "
        "then flat), overfitting, still improving (train longer) or healthy.",
    )
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(handler=_run_diagnose)


def _run_diagnose(args) -> None:
    import json

    from cnnlab.viz.diagnosis import diagnose_run

    diagnosis = diagnose_run(args.run_dir)
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        _say(diagnosis.text)


def _add_lr_find(sub) -> None:
    p = sub.add_parser(
        "lr-find",
        parents=[
            _shared(
                *("--data", "--data-dir", "--device", "--seed", "--out"),
                out="PNG path (default lr_find_MODEL.png)",
            )
        ],
        help="learning-rate range test: loss vs an exponentially growing rate, suggested lr",
        description="Train MODEL for a few hundred steps while the learning rate grows "
        "exponentially from --start-lr to --end-lr; plot the smoothed loss against the rate "
        "and suggest the rate where the loss falls fastest (minimum / 10 is printed too). "
        "The model's and optimizer's state are restored afterwards.",
    )
    p.add_argument("model", help="registered model name (see `cnnlab models`)")
    p.add_argument("--optimizer", default="momentum", help="see `cnnlab optimizers`")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--start-lr", type=float, default=1e-6)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=200, help="steps of the sweep (default 200)")
    p.set_defaults(handler=_run_lr_find, data="digits")  # the offline default dataset


def _run_lr_find(args) -> None:
    from rich.progress import Progress

    from cnnlab.outputs import FIGURE_SUFFIXES, check_output
    from cnnlab.viz.inputs import save_figure
    from cnnlab.viz.lr_find import check_finite_rates, lr_find, lr_find_figure

    out = check_output(args.out or f"lr_find_{args.model}.png", FIGURE_SUFFIXES, "a picture")
    check_finite_rates(args.start_lr, args.end_lr)  # refused before the progress bar starts
    device = _device(args.device)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("lr sweep", total=args.steps)
        result = lr_find(
            args.model,
            args.data,
            device=device,
            **_options(args, "data_dir", "optimizer", "batch_size", "start_lr", "end_lr"),
            **_options(args, "steps", "seed"),
            progress=lambda step: progress.update(task, completed=step),
        )
    title = f"learning-rate range test: {args.model} on {args.data}, {args.optimizer}"
    out = save_figure(lr_find_figure(result, title), out)
    _say(
        f"swept lr {result.lrs[0]:.3g} -> {result.lrs[-1]:.3g} in {len(result.lrs)} steps; "
        f"{result.describe_end()}\n"
        f"suggested lr (steepest descent of the smoothed loss): {result.suggested_lr:.3g}\n"
        f"lowest smoothed loss {result.smoothed.min():.4f} at lr {result.min_loss_lr:.3g}; "
        f"minimum / 10: {result.min_over_ten_lr:.3g}\n"
        f"plot: {out}"
    )


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="accuracy vs MACs chart, bubble area = parameters (Canziani et al. 2016)",
        description="Chart top-1 accuracy against MACs per image (log scale), one bubble per "
        "model, its area proportional to the parameters. Accuracy: --results CSV "
        "(model,top1[,top5]), --runs directories (best test top-1), else torchvision's "
        "published ImageNet-1K figures for the models that have them.",
    )
    p.add_argument("models", nargs="*", metavar="MODEL", help="registered model names")
    p.add_argument("--results", metavar="CSV", help="a CSV with columns model,top1[,top5]")
    p.add_argument("--runs", nargs="+", metavar="RUN_DIR", help="trained run directories")
    p.add_argument("--out", default="compare.png", help="PNG path (default compare.png)")
    p.set_defaults(handler=_run_compare)


def _run_compare(args) -> None:
    from cnnlab.viz.compare import compare_figure, compare_points, points_table
    from cnnlab.viz.inputs import save_figure

    points = compare_points(args.models, results=args.results, runs=args.runs)
    _print_wide(points_table(points))
    figure = compare_figure(points)
    _say(f"chart: {save_figure(figure, args.out, inputs=[args.results] if args.results else [])}")


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page of a run: curves, diagnosis, metrics, filters, summary",
        description="Write an HTML report of a run: curves, diagnosis, metrics table, "
        "configuration, first-layer filters and the model summary. Images are embedded, so "
        "the page needs no network.",
    )
    p.add_argument("run_dir", help="a run directory written by `cnnlab train`")
    p.add_argument("--out", help="HTML path (default RUN_DIR/report.html)")
    p.set_defaults(handler=_run_report)


def _run_report(args) -> None:
    from cnnlab.viz.report import build_report

    _say(f"report: {build_report(args.run_dir, args.out)}")


def _add_results(sub) -> None:
    p = sub.add_parser(
        "results",
        help="the papers' accuracies beside cnnlab's measured ones, with the commands",
        description="The results table: model, recipe, dataset, the paper's figure, cnnlab's "
        "measured figure (mean ± std over seeds, or 'not measured'), epochs, wall time, "
        "machine and the command that measures it.",
    )
    p.add_argument("--markdown", action="store_true", help="print the table as README shows it")
    p.set_defaults(handler=_run_results)


def _run_results(args) -> None:
    from cnnlab.results import results_markdown, results_table

    if args.markdown:
        print(results_markdown())
    else:
        _print_wide(results_table())


def _add_export(sub) -> None:
    from cnnlab.export import FORMATS

    p = sub.add_parser(
        "export",
        parents=[_shared("--weights", "--weights-file")],
        help="export a model or checkpoint to ONNX, TorchScript or safetensors, checked",
        description="Export a registered model or a trained checkpoint to ONNX (dynamo "
        "exporter), TorchScript (trace) or safetensors (the weights), then run the exported "
        "file on a random batch against PyTorch and print the largest difference relative "
        "to the largest output; above 1e-4 the export fails.",
    )
    p.add_argument("source", metavar="MODEL_OR_CHECKPOINT", help=_MODEL_OR_CHECKPOINT)
    p.add_argument("--format", choices=FORMATS, default="onnx", help="default onnx")
    p.add_argument("--out", help="file to write (default NAME.onnx here, or beside a checkpoint)")
    p.add_argument("--input", metavar="CxHxW", help="input size (default: the model's own)")
    p.add_argument("--dynamic-batch", action="store_true", help="leave the batch dimension free")
    p.set_defaults(handler=_run_export)


def _run_export(args) -> None:
    from cnnlab.export import export_model
    from cnnlab.sizing import parse_input_size

    result = export_model(
        args.source,
        args.format,
        args.out,
        input_size=parse_input_size(args.input) if args.input else None,
        dynamic_batch=args.dynamic_batch,
        **_options(args, "weights", "weights_file"),
    )
    _say(result.describe())


def _add_lab(sub) -> None:
    p = sub.add_parser(
        "lab",
        help="the lectures as an interactive page: convolution, network, optimizers, landscape",
        description="Open a local page (127.0.0.1, a free port) with five views: convolution "
        "step by step, the network explorer (summary, feature maps, receptive fields), an "
        "optimizer race, the loss landscape in 3-D and saliency maps. Ctrl-C stops it. With "
        "--export the same page is written as one self-contained offline file.",
    )
    p.add_argument(
        "source", nargs="?", metavar="MODEL_OR_CHECKPOINT", help="checkpoint, run dir or model"
    )
    p.add_argument("--image", help="PNG or JPEG for the convolution, features and saliency")
    p.add_argument("--export", metavar="FILE", help="write the page to FILE instead of serving")
    p.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL, open no browser")
    p.add_argument("--grid", type=int, default=15, help="landscape points per axis (default 15)")
    p.add_argument("--surfaces", help="export only these race surfaces, e.g. rosenbrock,saddle")
    p.set_defaults(handler=_run_lab)


def _port(text: str) -> int:
    """A TCP port, 0 (a free one) to 65535, for argparse's ``type``."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a whole number, got '{text}'") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"port must be 0 (a free one) to 65535, got {port}; e.g. --port 8000"
        )
    return port


def _run_lab(args) -> None:
    from cnnlab.lab import Lab, export_page, serve

    lab = Lab(args.source, args.image, landscape_grid=args.grid)
    if lab.trajectory is not None:
        _say(lab.trajectory.describe())
    if args.export:
        surfaces = [s.strip() for s in args.surfaces.split(",")] if args.surfaces else None
        path = export_page(lab, args.export, surfaces=surfaces)
        _say(f"lab page ({path.stat().st_size / 1e6:.1f} MB, works offline) -> {path}")
        return
    serve(lab, port=args.port, open_browser=not args.no_browser, announce=_say)


COMMANDS = [  # in the order `cnnlab --help` lists them: build, size, train, look inside
    _add_models,
    _add_summary,
    _add_datasets,
    _add_train,
    _add_resume,
    _add_evaluate,
    _add_predict,
    _add_recipes,
    _add_results,
    _add_optimizers,
    _add_optim_lab,
    _add_plot,
    _add_diagnose,
    _add_report,
    _add_lr_find,
    _add_compare,
    _add_filters,
    _add_features,
    _add_convolve,
    _add_saliency,
    _add_landscape,
    _add_gradflow,
    _add_export,
    _add_lab,
]


def build_parser() -> argparse.ArgumentParser:
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``cnnlab`` parser and its subcommands' parsers by name."""
    parser = _OneLineErrorParser(
        prog="cnnlab",
        description="Build, size, train, compare and understand classic convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrorParser)
    sub.required = True
    for add_command in COMMANDS:
        add_command(sub)
    return parser, sub.choices


def _check_threads(threads: object) -> None:
    """Refuse more --threads (given or from --config) than the machine has CPUs: torch would
    oversubscribe the cores and run slower, and 10000 threads can exhaust the process."""
    cpus = os.cpu_count() or 1
    if isinstance(threads, int) and not isinstance(threads, bool) and threads > cpus:
        raise ConfigError(
            f"--threads {threads} is more than this machine's {cpus} CPUs; give 1 to {cpus}, "
            "or leave it out"
        )


def _out_of_memory(error: BaseException) -> bool:
    """An allocation that failed: Python's MemoryError, torch's CPU allocator or CUDA OOM."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error)
    return "can't allocate" in text or "out of memory" in text.lower()


def _allocation(error: BaseException) -> str:
    """`` (N GB requested)`` when torch's message says how much it tried to allocate."""
    import re

    found = re.search(r"allocate (?:memory: you tried to allocate )?(\d+) bytes", str(error))
    if not found:
        return ""
    return f" ({int(found.group(1)) / 1e9:.3g} GB requested)"


def main(argv: list[str] | None = None) -> int:
    parser, commands = _parsers()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None):  # the file's values as defaults: given flags override
            commands[args.command].set_defaults(**_config_defaults(args.config))
            args = parser.parse_args(argv)
        for destination in ("out", "export"):  # refuse an unwritable one before the work
            if getattr(args, destination, None) == "":  # not "use the default" nor "serve"
                raise ConfigError(f"--{destination} is empty; give a file or directory name")
            if getattr(args, destination, None):
                directory = destination == "out" and getattr(args, "out_is_directory", False)
                check_output_path(getattr(args, destination), directory=directory)
        _check_threads(getattr(args, "threads", None))
        args.handler(args)
    except CnnlabError as error:
        _say(f"[bold red]error:[/] {escape(str(error))}", err=True)
        return 2
    except OSError as error:  # a default destination that cannot be written, a full disk, ...
        where = f" {error.filename}" if error.filename else ""
        reason = error.strerror or str(error)
        _say(f"[bold red]error:[/] cannot access{escape(where)}: {escape(reason)}", err=True)
        return 2
    except (MemoryError, RuntimeError) as error:  # torch.OutOfMemoryError is a RuntimeError
        if not _out_of_memory(error):
            raise
        _say(
            f"[bold red]error:[/] not enough memory for {escape(args.command)}"
            f"{escape(_allocation(error))}: reduce the batch size or the input size",
            err=True,
        )
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
