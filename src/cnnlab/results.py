"""What cnnlab's recipes have measured, beside the papers' figures: one table, kept here.

``cnnlab results`` prints it and README.md's "Results" section is its markdown form (a test
keeps the two equal). Every row names the command that measures it; a row nobody has
measured says "not measured". Accuracy is test top-1 at the final epoch, mean ± standard
deviation over the seeds listed. The CIFAR-10 here is the shared JPEG copy (quality 75),
which costs about three points against the original CIFAR-10 the papers used.

ImageNet rows are not trained here (no ImageNet on these machines); their cost is estimated
from the training images/s measured by ``benchmarks/imagenet_step_rate.py`` (forward,
backward and SGD step at 224x224, data loading excluded, so it is a lower bound).
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_MEASURED = "not measured"
IMAGENET_TRAIN_IMAGES = 1_281_167
# Training images/s at 224x224 (batch 16, 2 threads, bf16) by benchmarks/imagenet_step_rate.py
# on the 2-core AMD EPYC, 2026-12-02, while a training run shared it (BENCHMARKS.md); a model
# missing here has no cost estimate.
IMAGENET_IMAGES_PER_SECOND: dict[str, float] = {"vgg16": 1.1, "resnet50": 1.6}


@dataclass(frozen=True)
class ResultRow:
    """One row of the results table.

    Attributes:
        model: the registered model (or the outside reference's name).
        recipe: the cnnlab recipe, or what the reference ran.
        dataset: the data it was measured on.
        paper: the paper's figure, with where it is in the paper.
        measured: cnnlab's figure (mean ± std over seeds), or "not measured".
        epochs: epochs of training.
        wall_time: wall time of the training as measured, or the estimate for unmeasured rows.
        machine: where it was measured.
        command: the command that measures it.
    """

    model: str
    recipe: str
    dataset: str
    paper: str
    measured: str
    epochs: str
    wall_time: str
    machine: str
    command: str


COLUMNS = (
    ("model", "model"),
    ("recipe", "recipe"),
    ("dataset", "dataset"),
    ("paper", "paper's figure"),
    ("measured", "cnnlab measured"),
    ("epochs", "epochs"),
    ("wall_time", "wall time"),
    ("machine", "machine"),
    ("command", "command"),
)


def _imagenet_cost(model: str, epochs: int) -> str:
    rate = IMAGENET_IMAGES_PER_SECOND.get(model)
    if rate is None:  # the step rate was not measured: no estimate
        return f"{NOT_MEASURED} (estimate: benchmarks/imagenet_step_rate.py)"
    hours = epochs * IMAGENET_TRAIN_IMAGES / rate / 3600
    return (
        f"est. {hours:,.0f} h on the 2-core EPYC ({rate:.1f} img/s, shared); one GPU: not measured"
    )


def _imagenet_row(model: str, recipe: str, paper: str, epochs: int) -> ResultRow:
    """An ImageNet row: not trained here, its cost estimated from the measured step rate."""
    return ResultRow(
        model=model,
        recipe=recipe,
        dataset="ImageNet-1k",
        paper=paper,
        measured=NOT_MEASURED,
        epochs=str(epochs),
        wall_time=_imagenet_cost(model, epochs),
        machine="-",
        command=f"cnnlab train {model} --recipe {recipe} --data folder:IMAGENET_DIR",
    )


CIFAR_JPEG = "CIFAR-10 (JPEG q75 copy)"
DATA_DIR = "--data-dir DIR"
TIME_TO_ACCURACY = "python benchmarks/time_to_accuracy.py"  # several seeds: mean ± std

RESULTS: tuple[ResultRow, ...] = (
    ResultRow(
        model="lenet5",
        recipe="lenet1998",
        dataset="digits (bundled, 8x8 to 32x32)",
        paper="- (the paper used MNIST)",
        measured="98.61 ± 1.00% (seeds 0, 1, 2)",
        epochs="20",
        wall_time="44 ± 1 s (CPU shared with other jobs)",
        machine="2-core AMD EPYC (AVX-512 BF16), 1 thread, bf16",
        command="cnnlab train lenet5 --seed S",
    ),
    ResultRow(
        model="lenet5",
        recipe="lenet1998",
        dataset="MNIST (28x28 padded to 32x32)",
        paper="99.05% (0.95% error, LeCun et al. 1998)",
        measured=NOT_MEASURED,
        epochs="20",
        wall_time=NOT_MEASURED,
        machine="-",
        command=f"cnnlab train lenet5 --data mnist {DATA_DIR}",
    ),
    ResultRow(
        model="resnet20",
        recipe="resnet2016_cifar",
        dataset=CIFAR_JPEG,
        paper="91.25% (8.75% error, He et al. 2016, Table 6)",
        measured="87.48% (seed 0; best epoch 102: 87.84%)",
        epochs="164",
        wall_time="5.6 h over 4 sittings (median 71 s an epoch; CPU shared at times)",
        machine="2-core AMD EPYC (AVX-512 BF16), 2 threads, bf16",
        command=f"cnnlab train resnet20 --recipe resnet2016_cifar --data cifar10 {DATA_DIR}",
    ),
    ResultRow(
        model="resnet20",
        recipe="resnet_cifar_fast",
        dataset=CIFAR_JPEG,
        paper="- (aim: 87.28%, the row above less 0.2 pp)",
        measured="87.54 ± 0.22% (seeds 0, 1, 2; seed 0 shipped as weights 'cifar10')",
        epochs="40",
        wall_time="3,420 ± 217 s (seed 2 alone on the CPU: 3,170 s)",
        machine="2-core AMD EPYC (AVX-512 BF16), 2 processes x 1 thread, bf16",
        command=(
            f"{TIME_TO_ACCURACY} --recipe resnet_cifar_fast {DATA_DIR} --seeds 0,1,2 --processes 2"
        ),
    ),
    ResultRow(
        model="resnet56",
        recipe="fast_cifar",
        dataset=CIFAR_JPEG,
        paper="- (ResNet-56 after the paper's 164 epochs: 93.03%, He et al. 2016, Table 6)",
        measured="87.94% (seed 0)",
        epochs="30",
        wall_time="4,174 s (4,664 s with the per-epoch tests)",
        machine="2-core AMD EPYC (AVX-512 BF16), 2 processes x 1 thread, bf16",
        command=f"{TIME_TO_ACCURACY} --recipe fast_cifar {DATA_DIR} --seeds 0 --processes 2",
    ),
    ResultRow(
        model="speedrun_cifar_net",
        recipe="speedrun_cifar",
        dataset=CIFAR_JPEG,
        paper="94.01% with TTA (Jordan 2024, original CIFAR-10)",
        measured=(
            "89.74 ± 0.38%, 90.79 ± 0.27% with TTA (Zen 4); 89.74 ± 0.27%, 90.68 ± 0.06% with "
            "TTA (Xeon, AMX) (seeds 0-2; Zen 4's seed 0 shipped as 'cifar10')"
        ),
        epochs="8",
        wall_time=(
            "784 ± 8 s (Zen 4; 0.80x airbench94_cpu's in the same run), 429 ± 10 s (Xeon with "
            "AMX; 0.82x), 524 ± 23 s (Zen 5, before the frozen whitening bias and the adaptive "
            "TTA; 0.80x)"
        ),
        machine=(
            "2-core AMD EPYC, AVX-512 BF16, Zen 4 (family 25 model 17) and Zen 5 (family 26 "
            "model 2): 2 processes x 1 thread; 2-core Intel Xeon with AMX (family 6 model 167): "
            "1 process x 2 threads; bf16"
        ),
        command=(
            f"{TIME_TO_ACCURACY} --recipe speedrun_cifar {DATA_DIR} --seeds 0,1,2 "
            "--threads 2 --processes 2 --reference airbench (with AMX: --processes 1)"
        ),
    ),
    ResultRow(
        model="airbench94 (reference)",
        recipe="Jordan 2024, CPU port",
        dataset=CIFAR_JPEG,
        paper="94.01% with TTA (Jordan 2024, original CIFAR-10)",
        measured=(
            "89.96 ± 0.29%, 90.81 ± 0.26% with TTA (Zen 4); 89.93 ± 0.17%, 90.71 ± 0.15% with "
            "TTA (Xeon, AMX) (seeds 0-2)"
        ),
        epochs="9.9",
        wall_time=(
            "980 ± 31 s (Zen 4), 521 ± 26 s (Xeon with AMX), 655 ± 48 s (Zen 5), same runs as "
            "speedrun_cifar_net's"
        ),
        machine="the same three CPUs, 1 process x 2 threads, bf16",
        command="python ../shared/tools/airbench94_cpu.py DIR --threads 2 --seed S",
    ),
    *(
        _imagenet_row(model, recipe, paper, epochs)
        for model, recipe, paper, epochs in (
            (
                "alexnet_paper",
                "alexnet2012",
                "59.3% (40.7% error, 1 CNN, Krizhevsky et al. 2012, Table 2)",
                90,
            ),
            ("vgg16", "vgg2014", "74.4% (25.6% error, D, Simonyan & Zisserman 2014, Table 3)", 74),
            (
                "resnet50",
                "resnet2016_imagenet",
                "77.15% (22.85% error, 10-crop, He et al. 2016, Table 3)",
                120,
            ),
        )
    ),
)


def results_markdown() -> str:
    """The table as README.md shows it (GitHub markdown)."""
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in RESULTS:
        cells = [getattr(row, key) for key, _ in COLUMNS]
        cells[-1] = f"`{cells[-1]}`"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def results_table():
    """The table as ``cnnlab results`` prints it (rich), the commands numbered below it."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="results: test top-1 at the final epoch, the papers' and cnnlab's")
    table.add_column("#", justify="right")
    for key, title in COLUMNS[:-1]:
        table.add_column(title, overflow="fold", no_wrap=key in ("model", "recipe", "epochs"))
    for number, row in enumerate(RESULTS, start=1):
        table.add_row(str(number), *(getattr(row, key) for key, _ in COLUMNS[:-1]))
    commands = "\n".join(
        f"{number:2d}. {row.command}" for number, row in enumerate(RESULTS, start=1)
    )
    return Group(table, Text("measured by (S = each seed):\n" + commands))
