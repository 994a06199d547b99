"""Time to accuracy: a recipe trained for several seeds, against airbench94_cpu in the same run.

For each seed it trains ``cnnlab train MODEL --recipe RECIPE`` in-process and reports: the final
test top-1 without and with the recipe's test-time augmentation (``speedrun_cifar``:
``flipshift``), the epochs, the training images/s, and three wall times:

* ``setup s``: loading the decoded dataset from cnnlab's cache, building the model and the
  data-dependent initialisation (whitening); the JPEG decoding itself is timed once, before
  the seeds, and reported on its own line;
* ``train s``: the training loop of every epoch plus the final test-time-augmented
  evaluation, which is what airbench94 counts (it leaves out its per-epoch evaluations);
* ``wall s``: the whole training call (per-epoch evaluations and checkpoints included).

``--processes N`` trains as N one-thread DDP processes under torchrun instead of one process
(setup time is then inside ``wall s``, not measured apart). ``--runs DIR...`` summarises run
directories trained before (seeds run one at a time, or across sittings) the same way, with
their epochs' times in metrics.csv as ``wall s``.

and the ``train s`` at which each threshold (90, 93, 94% by default) was first reached: at the
end of the first epoch whose test top-1 reached it, or at the end with the test-time
augmentation. Then mean and standard deviation over the seeds.

``--record FILE`` keeps each finished seed (both sides) in a JSON file and skips the seeds it
already holds, so a round longer than one sitting (three seeds on an AVX2-only CPU take about
six and a half hours, BENCHMARKS.md) is finished in several on the same machine. Each seed's
pair is still measured in one run; a file of another machine, recipe or reference stops the
script with one line.

With ``--reference airbench`` it also runs ``airbench94_cpu.py DATA --seed S`` (the port of
Jordan's airbench94 in ``../shared/tools``; ``--fp32`` where this CPU has no native bf16, as
cnnlab then trains in float32) for the same seeds, in the same process tree, seed by seed
(cnnlab's seed 0, airbench's seed 0, cnnlab's seed 1, ...; each finished run is printed in a
line at once), and prints the ratio of the mean ``train s`` (cnnlab / airbench) and the
difference of the mean accuracies with test-time augmentation.

Example (about an hour on 2 AVX-512 cores)::

    python benchmarks/time_to_accuracy.py --data-dir /root/data --seeds 0,1,2 --threads 2 \\
        --reference airbench
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import torch

from cnnlab.checkpoint import model_from_checkpoint
from cnnlab.data import load_dataset, make_loader
from cnnlab.data.augment import BatchAugment
from cnnlab.errors import CnnlabError
from cnnlab.evaluation import tta_probabilities
from cnnlab.machine import bf16_supported, machine_summary
from cnnlab.run_metrics import read_metrics
from cnnlab.training import resolve_config
from cnnlab.training.engine import TEST_BATCH, Trainer
from cnnlab.training.recipes import get_recipe

AIRBENCH = Path(__file__).resolve().parents[2] / "shared" / "tools" / "airbench94_cpu.py"
WIDTH = 17  # characters per table column
AIRBENCH_EPOCH = re.compile(r"epoch (\d+): train seconds so far (\d+).* test acc ([\d.]+)")
AIRBENCH_FINAL = re.compile(r"final: tta test acc ([\d.]+), total seconds (\d+)")


@torch.no_grad()
def test_top1(model: torch.nn.Module, loader, amp: bool, tta: str) -> float:
    """Test top-1 (%) of ``model`` with ``tta``, in bf16 autocast when ``amp``."""
    model = model.eval()
    correct = count = 0
    for images, labels in loader.epoch(0):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            probabilities = tta_probabilities(model, images, tta)
        correct += (probabilities.argmax(1) == labels).sum().item()
        count += len(labels)
    return 100 * correct / count


def first_reached(times: list[float], accuracies: list[float], threshold: float) -> float | None:
    """The first time whose accuracy is at least ``threshold``."""
    return next((t for t, a in zip(times, accuracies, strict=True) if a >= threshold), None)


def train_seed(args, seed: int, out: Path, tta: str) -> dict:
    """Train one seed; returns its figures (see the module docstring)."""
    options = dict(
        data=args.data, data_dir=args.data_dir, seed=seed, threads=args.threads, out=str(out)
    )
    config = resolve_config(args.model, args.recipe, **options, **recipe_changes(args))
    if args.processes > 1:
        setup, wall, model, loader, amp = train_processes(args, config, out)
    else:
        began = time.perf_counter()
        trainer = Trainer(config)
        setup = time.perf_counter() - began
        began = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - began
        model, loader, amp = trainer.model, trainer.test_loader, trainer.amp
    return run_figures(args, seed, out, config.batch_size, (model, loader, amp), tta, setup, wall)


def run_figures(args, seed, out: Path, batch, tested, tta, setup, wall) -> dict:
    """The figures of one finished run in ``out``; ``tested`` is (model, test loader, amp)."""
    model, loader, amp = tested
    rows = read_metrics(out / "metrics.csv")
    plain = rows[-1]["test_top1"]  # the engine's evaluation of the final weights
    began = time.perf_counter()
    with_tta = test_top1(model, loader, amp, tta) if tta != "none" else plain
    tta_time = time.perf_counter() - began
    loop_times = []  # each epoch's training loop alone: images / (images/s)
    previous_step = 0
    for row in rows:
        loop_times.append((row["step"] - previous_step) * batch / row["images_per_s"])
        previous_step = row["step"]
    elapsed = [sum(loop_times[: i + 1]) for i in range(len(rows))]
    train_time = elapsed[-1] + tta_time
    result = dict(
        seed=seed,
        top1=plain,
        top1_tta=with_tta,
        epochs=len(rows),
        images_per_s=rows[-1]["step"] * batch / elapsed[-1],
        setup=setup,
        train=train_time,
        wall=wall + tta_time,
        run_dir=str(out),
    )
    times = [*elapsed, train_time]
    accuracies = [*(r["test_top1"] for r in rows), with_tta]
    for threshold in args.thresholds:
        result[f"t{threshold:g}"] = first_reached(times, accuracies, threshold)
    return result


def train_processes(args, config, out: Path):
    """Train as ``torchrun --nproc_per_node N -m cnnlab.cli train ...`` (N one-thread DDP
    processes); returns (setup s: not separable here, 0), wall s, the model, a test loader and
    the precision, for the test-time-augmented evaluation."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", str(args.processes), "-m", "cnnlab.cli", "train"]
    command += [config.model, "--recipe", config.recipe, "--data", config.data]
    command += ["--seed", str(config.seed), "--threads", "1", "--out", str(out)]
    command += ["--data-dir", config.data_dir] if config.data_dir else []
    command += ["--epochs", str(config.epochs), "--batch-size", str(config.batch_size)]
    for key, value in config.model_kwargs.items():
        command += ["--model-arg", f"{key}={value}"]
    if config.small_crop is not None:
        command += ["--small-crop", str(config.small_crop)]
        command += ["--small-crop-epochs", str(config.small_crop_epochs)]
    if config.whitening_bias_epochs is not None:
        command += ["--whitening-bias-epochs", str(config.whitening_bias_epochs)]
    command += ["--augment", config.augment]
    print("  $ " + " ".join(command), flush=True)
    began = time.perf_counter()
    finished = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if finished.returncode != 0:  # their own error lines went to the terminal, above this one
        stop(
            f"the {args.processes} training processes of seed {config.seed} stopped with exit "
            f"status {finished.returncode} (their lines above say why); the run is kept in {out}"
        )
    wall = time.perf_counter() - began
    model, loader, amp = tested_side(*model_from_checkpoint(out), config.data_dir)
    return 0.0, wall, model, loader, amp


def tested_side(model: torch.nn.Module, state: dict, data_dir: str | None):
    """A run's final model (and its checkpoint ``state``), a test loader and its precision."""
    dataset = load_dataset(state["config"]["data"], data_dir=data_dir)
    loader = make_loader("test", dataset, batch_size=TEST_BATCH, train=False, channels_last=True)
    amp = bool(state["config"].get("amp"))
    return model.to(memory_format=torch.channels_last), loader, amp


def summarise_run(args, run_dir: Path, tta: str) -> dict:
    """The figures of a run trained elsewhere (``--runs``): its wall time is the sum of its
    epochs' times in metrics.csv, setup not known (0)."""
    model, state = model_from_checkpoint(run_dir)
    config = state["config"]
    if config["recipe"] != args.recipe:
        stop(f"{run_dir} was trained with --recipe {config['recipe']}: pass that")
    tested = tested_side(model, state, args.data_dir or config["data_dir"])
    wall = sum(row["epoch_time"] for row in read_metrics(run_dir / "metrics.csv"))
    return run_figures(args, config["seed"], run_dir, config["batch_size"], tested, tta, 0.0, wall)


def run_airbench(args, seed: int, fp32: bool) -> dict:
    """One airbench94_cpu run; its figures parsed from what it prints."""
    command = [sys.executable, str(args.airbench), args.data_dir, "--seed", str(seed)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if fp32:
        command.append("--fp32")
    print("  $ " + " ".join(command), flush=True)
    began = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - began
    epochs = [(float(s), float(a) * 100) for _, s, a in AIRBENCH_EPOCH.findall(output)]
    final = AIRBENCH_FINAL.search(output)
    if final is None:
        raise RuntimeError(f"airbench94_cpu printed no final line:\n{output[-2000:]}")
    tta, total = float(final.group(1)) * 100, float(final.group(2))
    result = dict(
        seed=seed,
        top1=epochs[-1][1],
        top1_tta=tta,
        epochs=len(epochs),
        images_per_s=None,  # airbench94_cpu prints no overall rate, nor its setup apart
        setup=None,
        train=total,
        wall=wall,
        run_dir="",
    )
    times = [*(s for s, _ in epochs), total]
    accuracies = [*(a for _, a in epochs), tta]
    for threshold in args.thresholds:
        result[f"t{threshold:g}"] = first_reached(times, accuracies, threshold)
    return result


def read_record(args, machine: str) -> dict[int, list[dict]]:
    """The seeds ``--record`` already holds: seed -> [cnnlab's row, the reference's row?]."""
    if not args.record or not args.record.exists():
        return {}
    try:
        record = json.loads(args.record.read_text())
        seeds = {int(seed): rows for seed, rows in record["seeds"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        stop(f"{args.record} is not a --record file of this script ({error}): give another")
    ours = dict(machine=machine, recipe=args.recipe, reference=args.reference)
    ours["changes"] = recipe_changes(args)
    theirs = {key: record.get(key, {} if key == "changes" else None) for key in ours}
    if theirs != ours:
        stop(f"{args.record} holds seeds of {theirs}, not of this round's {ours}: give another")
    return seeds


def stop(message: str) -> NoReturn:
    """One line on stderr and exit status 2, as for any bad input."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def recipe_changes(args) -> dict:
    """The recipe's settings this round overrides: they belong to a ``--record``'s identity,
    so a round of a variant never mixes with the recipe's own seeds."""
    changes = dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        small_crop=args.small_crop,
        small_crop_epochs=args.small_crop_epochs,
        whitening_bias_epochs=args.whitening_bias_epochs,
        augment=args.augment,
        model_kwargs=dict(args.model_arg or []),
    )
    return {key: value for key, value in changes.items() if value not in (None, {})}


def write_record(args, machine: str, seeds: dict[int, list[dict]]) -> None:
    record = dict(machine=machine, recipe=args.recipe, reference=args.reference, seeds=seeds)
    record["changes"] = recipe_changes(args)
    args.record.write_text(json.dumps(record, indent=1) + "\n")


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def say_one(result: dict) -> None:
    """One finished run in a line, so an interrupted round still leaves its figures."""
    print(
        f"  seed {result['seed']}: top-1 {result['top1']:.2f}%, with tta "
        f"{result['top1_tta']:.2f}%, {result['train']:.0f} s",
        flush=True,
    )


def print_table(name: str, results: list[dict], thresholds: list[float]) -> None:
    columns = ["top1", "top1_tta", "epochs", "images_per_s", "setup", "train", "wall"]
    columns += [f"t{t:g}" for t in thresholds]
    print(f"\n{name}")
    print("  " + "seed".ljust(6) + "".join(c.rjust(WIDTH) for c in columns))
    for result in results:
        cells = [_cell(result[c]) for c in columns]
        print("  " + str(result["seed"]).ljust(6) + "".join(c.rjust(WIDTH) for c in cells))
    means = [mean_std([r[c] for r in results]) for c in columns]
    print("  " + "mean".ljust(6) + "".join(m.rjust(WIDTH) for m in means))
    for result in results:
        if result["run_dir"]:
            print(f"  seed {result['seed']} run directory: {result['run_dir']}")


def _cell(value) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.2f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="speedrun_cifar")
    parser.add_argument("--model", help="default: the recipe's model")
    parser.add_argument("--data", default="cifar10")
    parser.add_argument("--data-dir", help="the CIFAR-10 ImageFolder tree (train/, test/)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated, e.g. 0,1,2")
    parser.add_argument("--threads", type=int, help="CPU threads for both (default: torch's)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (smoke tests)")
    parser.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    parser.add_argument(
        "--small-crop", type=int, metavar="PIXELS", help="as cnnlab train --small-crop"
    )
    parser.add_argument("--small-crop-epochs", type=int, metavar="N", help="with --small-crop")
    parser.add_argument("--whitening-bias-epochs", type=int, metavar="N", help="as cnnlab train")
    parser.add_argument("--augment", metavar="NAME", help="as cnnlab train, e.g. translate2+jitter")
    parser.add_argument(
        "--processes", type=int, default=1, help="N one-thread torchrun processes (DDP)"
    )
    parser.add_argument("--model-arg", action="append", type=_key_value, metavar="KEY=VALUE")
    parser.add_argument("--thresholds", default="90,93,94", help="test top-1 %% to time")
    parser.add_argument("--reference", choices=("none", "airbench"), default="none")
    parser.add_argument("--airbench", default=str(AIRBENCH), help="airbench94_cpu.py")
    parser.add_argument("--out", help="where the runs go (default: a temporary directory)")
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="keep each finished seed in this JSON file and skip the seeds it holds",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="summarise these finished run directories (one a seed) instead of training",
    )
    args = parser.parse_args(argv)
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
        args.thresholds = [float(t) for t in args.thresholds.split(",")]
    except ValueError as error:
        parser.error(f"--seeds and --thresholds take comma-separated numbers ({error})")
    if args.runs and args.record:
        parser.error("--record keeps seeds of a training round: leave it out with --runs")
    for run_dir in args.runs or []:
        if not (run_dir / "metrics.csv").is_file() or not (run_dir / "checkpoint.pt").is_file():
            parser.error(
                f"--runs: {run_dir} is not a finished cnnlab run (no metrics.csv or checkpoint.pt)"
            )
    if args.runs and args.reference != "none":
        parser.error(
            "--runs summarises finished runs only: time the reference with a training round"
        )
    if args.reference == "airbench" and not args.data_dir:
        parser.error("--reference airbench needs --data-dir (the ImageFolder both train on)")
    if args.reference == "airbench" and not Path(args.airbench).is_file():
        parser.error(
            f"--airbench {args.airbench}: no such file; give the path of airbench94_cpu.py "
            "(this project keeps it in ../shared/tools)"
        )
    try:  # every override checked before any data is decoded or seed trained
        args.model = args.model or get_recipe(args.recipe).model
        resolve_config(args.model, args.recipe, data=args.data, **recipe_changes(args))
        if args.augment is not None:  # CIFAR-10 is held in memory: the batched augmentations
            BatchAugment.from_name(args.augment, dataset_default="crop+flip", crop_padding=4)
    except CnnlabError as error:
        parser.error(str(error))
    return args


def _key_value(text: str) -> tuple[str, object]:
    import yaml

    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        run_round(args)
    except CnnlabError as error:  # e.g. no dataset there, or a crop the images cannot give
        stop(str(error))


def run_round(args: argparse.Namespace) -> None:
    """Train (or read from ``--record``) every seed on both sides and print the tables."""
    tta = get_recipe(args.recipe).tta
    out = Path(args.out or tempfile.mkdtemp(prefix="time_to_accuracy-"))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    native_bf16 = bf16_supported(device)
    print(f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    machine = machine_summary(device)
    print(f"machine: {machine}; bf16 {'native' if native_bf16 else 'off'}")
    print("command: python benchmarks/time_to_accuracy.py " + " ".join(sys.argv[1:]))
    recorded = read_record(args, machine)
    began = time.perf_counter()
    dataset = load_dataset(args.data, data_dir=args.data_dir)
    print(
        f"data: {args.data}, {len(dataset.train)} train / {len(dataset.test)} test images, "
        f"decoded (or read from cnnlab's cache) in {time.perf_counter() - began:.1f} s, "
        "not counted below"
    )
    ours, theirs = [], []
    for run_dir in args.runs or []:
        ours.append(summarise_run(args, run_dir, tta))
        say_one(ours[-1])
    # seed by seed, so both sides see the same drift of a shared CPU
    for seed in [] if args.runs else args.seeds:
        if seed in recorded:
            print(f"seed {seed}: measured before, read from {args.record}", flush=True)
            ours.append(recorded[seed][0])
            theirs.extend(recorded[seed][1:])
            continue
        print(f"cnnlab {args.model} --recipe {args.recipe}, seed {seed} ...", flush=True)
        ours.append(train_seed(args, seed, out / f"seed{seed}", tta))
        say_one(ours[-1])
        if args.reference == "airbench":
            print(f"airbench94_cpu, seed {seed} ...", flush=True)
            try:
                theirs.append(run_airbench(args, seed, fp32=not native_bf16))
            except subprocess.CalledProcessError as error:  # one line, and say what is kept
                said = (error.stderr or "").strip().splitlines() or ["nothing on stderr"]
                stop(
                    f"airbench94_cpu.py stopped with exit status {error.returncode} "
                    f"({said[-1]}); cnnlab's run of seed {seed} is kept in {out / f'seed{seed}'}"
                )
            say_one(theirs[-1])
        if args.record:
            recorded[seed] = [ours[-1], *theirs[-1:]]  # the reference's, if any
            write_record(args, machine, recorded)
    print_table(f"cnnlab {args.recipe} (tta {tta})", ours, args.thresholds)
    if not theirs:
        return
    print_table("airbench94_cpu (tta level 2)", theirs, args.thresholds)
    ratio = statistics.mean(r["train"] for r in ours) / statistics.mean(r["train"] for r in theirs)
    gap = statistics.mean(r["top1_tta"] for r in ours) - statistics.mean(
        r["top1_tta"] for r in theirs
    )
    print(
        f"\nmean train time ratio cnnlab / airbench94_cpu: {ratio:.3f}; "
        f"mean top-1 with tta, cnnlab - airbench94_cpu: {gap:+.2f} pp"
    )


if __name__ == "__main__":
    main()
