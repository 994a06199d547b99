"""The papers' training recipes, by name.

Each recipe is a function returning the ``TrainConfig`` values the paper used; its docstring
quotes what the paper did and says what cnnlab scales down or replaces. A recipe sets
hyperparameters, not the model: ``cnnlab train resnet56 --recipe resnet2016_cifar`` trains
ResNet-56 the way the paper trained its CIFAR nets; ``model`` is only the one the paper used,
shown by ``cnnlab recipes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.errors import unknown_name


@dataclass(frozen=True)
class Recipe:
    """A named recipe: the paper, the network it trained, a one-line summary, the settings,
    and the test-time augmentation its accuracy is reported with (``cnnlab evaluate --tta``)."""

    name: str
    paper: str
    model: str
    description: str
    settings: dict
    details: str
    tta: str = "none"
    models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()


_RECIPES: dict[str, Recipe] = {}


def recipe(
    name: str,
    *,
    paper: str,
    model: str,
    description: str,
    tta: str = "none",
    models: tuple[str, ...] = (),
    datasets: tuple[str, ...] = (),
):
    """Register ``fn() -> settings`` as a recipe; the docstring becomes its details.

    ``models`` are the networks the paper trained this way and ``datasets`` the datasets it
    trained them on (``"folder"``: an image folder such as ImageNet): ``cnnlab train MODEL
    --data DATA`` without ``--recipe`` uses the recipe that lists both. Every recipe names its
    augmentation, so that none inherits a loader's default.
    """

    def decorate(fn: Callable[[], dict]) -> Callable[[], dict]:
        settings = fn()
        if "model" in settings or "augment" not in settings:
            raise ValueError(f"recipe {name} must name its augmentation and not the model")
        _RECIPES[name] = Recipe(
            name, paper, model, description, settings, fn.__doc__ or "", tta, models, datasets
        )
        return fn

    return decorate


def list_recipes() -> list[Recipe]:
    """Every recipe, in the order of the papers (oldest first)."""
    return list(_RECIPES.values())


def get_recipe(name: str) -> Recipe:
    key = name.strip().lower()
    if key not in _RECIPES:
        raise unknown_name("recipe", name, _RECIPES, "run `cnnlab recipes`")
    return _RECIPES[key]


#: the recipe for the bundled digits, the offline default dataset, where no paper's fits
DIGITS_RECIPE = "digits"


def dataset_kind(data: str) -> str:
    """``cifar10`` for ``cifar10``, ``folder`` for ``folder:PATH``: what a recipe matches.

    ``imagenet`` is an image folder too (the loader then says to pass ``folder:PATH``).
    """
    kind = data.partition(":")[0].strip().lower()
    return "folder" if kind == "imagenet" else kind


def recipe_datasets(entry: Recipe) -> tuple[str, ...]:
    """The datasets a recipe was written for: those it lists, else its own ``data``."""
    return entry.datasets or (dataset_kind(entry.settings["data"]),)


def paper_recipes_for(model: str) -> list[str]:
    """The recipes written for ``model``: those its registry entry names, then those naming it."""
    from cnnlab.models import list_models, model_entry

    key = model.strip().lower()
    named = list(model_entry(key).recipes) if key in list_models() else []
    named += [r.name for r in _RECIPES.values() if key in r.models and r.name not in named]
    return [name for name in named if name in _RECIPES]


def default_recipe_for(model: str, data: str | None = None) -> str | None:
    """The recipe ``cnnlab train MODEL [--data DATA]`` uses when no ``--recipe`` is given.

    With ``data``: the paper's recipe for that model on that dataset (``resnet20`` on
    ``cifar10`` is ``resnet2016_cifar``), or ``None`` (cnnlab's defaults) when the paper did not
    train it there. Without: the bundled digits, which need no download: the model's own
    recipe where a paper trained it on digits (LeNet-5), else the short ``digits`` recipe.
    """
    kind = "digits" if data is None else dataset_kind(data)
    for name in paper_recipes_for(model):
        if kind in recipe_datasets(_RECIPES[name]):
            return name
    return DIGITS_RECIPE if data is None else None


def recipe_note(model: str, data: str | None, chosen: str | None) -> str:
    """One line saying which recipe ``cnnlab train`` chose, unasked, and how to get the paper's."""
    papers = paper_recipes_for(model)
    if chosen == DIGITS_RECIPE:
        if not papers:
            return (
                f"recipe {DIGITS_RECIPE}: a short recipe for the bundled digits (no paper trained "
                f"{model} on them); --data and --recipe choose others (`cnnlab recipes`)"
            )
        paper = _RECIPES[papers[0]]
        where = paper.settings["data"]
        where = "folder:PATH" if dataset_kind(where) == "folder" else where
        return (
            f"recipe {DIGITS_RECIPE}: a short recipe for the bundled digits; the paper's is "
            f"{paper.name} ({paper.paper}): cnnlab train {model} --data {where}"
        )
    if chosen is not None:
        entry = _RECIPES[chosen]
        kind = dataset_kind(data or entry.settings["data"])
        kind = "an image folder (ImageNet)" if kind == "folder" else kind
        return (
            f"recipe {chosen} ({entry.paper}) for {model} on {kind}: `cnnlab recipes {chosen}` "
            f"shows what the paper did; --recipe picks another"
        )
    return (
        f"no recipe: no paper trained {model} on {data}, so cnnlab's defaults apply; "
        f"--recipe picks one (`cnnlab recipes`)"
    )


@recipe(
    "lenet1998",
    paper="LeCun et al. 1998",
    model="lenet5",
    description="LeNet-5, RBF/MSE loss, decreasing lr; MNIST scaled to the bundled digits",
    models=("lenet5",),
    datasets=("digits", "mnist"),
)
def lenet1998() -> dict:
    """LeNet-5 on handwritten digits.

    Paper: "the global learning rate ... was decreased using the following schedule: 0.0005
    for the first two passes, 0.0002 for the next three, 0.0001 for the next three, 0.00005
    for the next 4, and 0.00001 thereafter", 20 passes over MNIST's 60,000 images, with the
    "stochastic diagonal Levenberg-Marquardt" method (a per-parameter step size from a running
    estimate of the diagonal Hessian) and the RBF output layer trained with the MSE-like loss.

    Scaled down: the bundled scikit-learn digits (1,797 images, 8x8 scaled to 32x32) instead of
    MNIST; SGD with momentum 0.9 replaces the diagonal Levenberg-Marquardt step sizes (momentum
    gives a similar per-direction damping at no extra cost), and the paper's staircase of
    decreasing rates becomes 0.002 divided by 3 after epochs 10, 14 and 17 of 20. Random
    shifts of up to 2 pixels: the translations among the paper's random distortions, which
    took its error from 0.95% to 0.8% (section III.C); the 1,797 digits need them more. One CPU
    thread: a 60k-parameter net on 32x32 batches of 32 gains nothing from splitting each
    operation over cores, and slows down many times when another process shares them.
    """
    return {
        "data": "digits",
        "augment": "crop",
        "epochs": 20,
        "batch_size": 32,
        "optimizer": "momentum",
        "lr": 0.002,
        "momentum": 0.9,
        "schedule": "multistep",
        "milestones": [10, 14, 17],
        "gamma": 1 / 3,
        "threads": 1,
    }


#: what the ImageNet papers of 2012-2015 share: SGD with momentum 0.9, the rate ÷10 whenever the
#: validation error stops improving (``plateau``); each recipe adds its own rate, decay, batch
_IMAGENET_SGD = {
    "data": "folder:imagenet",
    "optimizer": "momentum",
    "momentum": 0.9,
    "schedule": "plateau",
    "patience": 5,
}


@recipe(
    "alexnet2012",
    paper="Krizhevsky et al. 2012",
    model="alexnet_paper",
    description="AlexNet's momentum 0.9 wd 5e-4 batch 128, ÷10 on plateaus; 227 crops, lighting",
    models=("alexnet_paper",),
)
def alexnet2012() -> dict:
    """AlexNet on ImageNet.

    Paper: "We trained our models using stochastic gradient descent with a batch size of 128
    examples, momentum of 0.9, and weight decay of 0.0005 ... The learning rate was initialized
    at 0.01 ... divide the learning rate by 10 when the validation error rate stopped improving
    ... reduced three times prior to termination ... roughly 90 cycles through the training
    set of 1.2 million images", with the update rule of section 5,
    ``v <- 0.9 v - 0.0005 eps w - eps g; w <- w + v`` (the ``alexnet`` optimizer: the rate
    sits inside the velocity, so after a cut old steps keep their rate, unlike torch's SGD).
    Dropout 0.5 in the first two fully connected layers (in the model, ``alexnet_paper``, two
    towers). Augmentation (section 4.1): random crops of the 256x256 images and their mirror
    images, and PCA colour lighting. The paper says 224x224 crops, but its own arithmetic
    ((227 - 11) / 4 + 1 = 55 maps after conv1) needs 227, which the model takes: the crops are
    227 of 256. Scaled down: nothing in the settings; point ``--data folder:PATH`` at an
    ImageNet folder. The "÷10 when the validation error stops improving" is ``plateau``.
    """
    return {
        **_IMAGENET_SGD,
        "augment": "alexnet",
        "epochs": 90,
        "batch_size": 128,
        "optimizer": "alexnet",
        "lr": 0.01,
        "weight_decay": 5e-4,
    }


@recipe(
    "zfnet2013",
    paper="Zeiler & Fergus 2013",
    model="zfnet",
    description="AlexNet's recipe: SGD 0.01 momentum 0.9 batch 128, lr annealed on plateaus, 70 ep",
    models=("zfnet",),
)
def zfnet2013() -> dict:
    """ZFNet on ImageNet.

    Paper: "using stochastic gradient descent with a mini-batch size of 128 to update the
    parameters, starting with a learning rate of 10^-2, in conjunction with a momentum term of
    0.9. We anneal the learning rate throughout training manually when the validation error
    plateaus. Dropout is used in the fully connected layers (6 and 7) with a rate of 0.5 ...
    We stopped training after 70 epochs". The paper states no weight decay; cnnlab keeps
    AlexNet's 5e-4, which ZFNet otherwise follows. The manual annealing becomes ``plateau``.
    Augmentation (section 3): "resizing the smallest dimension to 256, cropping the center
    256x256 region ... 10 different sub-crops of size 224x224 (corners + center with(out)
    horizontal flips)": random 224 crops of the central 256x256 and flips, no colour lighting.
    """
    return {
        **_IMAGENET_SGD,
        "augment": "zfnet",
        "epochs": 70,
        "batch_size": 128,
        "lr": 0.01,
        "weight_decay": 5e-4,
    }


@recipe(
    "vgg2014",
    paper="Simonyan & Zisserman 2014",
    model="vgg16",
    description="SGD 0.01 momentum 0.9 wd 5e-4 batch 256, ÷10 on plateau, 74 ep, S in [256,512]",
    models=("vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"),
)
def vgg2014() -> dict:
    """VGG on ImageNet.

    Paper: "The batch size was set to 256, momentum to 0.9. The training was regularised by
    weight decay (the L2 penalty multiplier set to 5*10^-4) and dropout regularisation for the
    first two fully-connected layers (dropout ratio set to 0.5). The learning rate was
    initially set to 10^-2, and then decreased by a factor of 10 when the validation set
    accuracy stopped improving ... the learning was stopped after 370K iterations (74
    epochs)". Augmentation (section 3.1): "randomly cropped from rescaled training images",
    random flips and RGB shift, with scale jittering, "each training image is individually
    rescaled by randomly sampling S from a certain range [Smin, Smax] (we used Smin = 256 and
    Smax = 512)": the ``vgg`` augmentation. The multi-scale test is ``cnnlab evaluate --tta
    multiscale``. The update is Caffe's SGD with momentum (torch's ``momentum``).
    """
    return {
        **_IMAGENET_SGD,
        "augment": "vgg",
        "epochs": 74,
        "batch_size": 256,
        "lr": 0.01,
        "weight_decay": 5e-4,
    }


@recipe(
    "googlenet2014",
    paper="Szegedy et al. 2014",
    model="googlenet_paper",
    description="SGD momentum 0.9, lr -4% every 8 epochs, Polyak averaging, aux losses x0.3",
    models=("googlenet_paper",),
)
def googlenet2014() -> dict:
    """GoogLeNet on ImageNet.

    Paper: "asynchronous stochastic gradient descent with 0.9 momentum, fixed learning rate
    schedule (decreasing the learning rate by 4% every 8 epochs). Polyak averaging was used to
    create the final model used at inference time"; the auxiliary classifiers' "loss was added
    to the total loss of the network with a discount weight (the losses of the auxiliary
    classifiers were weighted by 0.3)". The paper gives no initial rate or length: cnnlab uses
    0.01 and 250 epochs (31 decays, ending at 0.96^31 = 28% of the start rate), the EMA
    decay 0.9999 stands for Polyak averaging, and synchronous SGD replaces the asynchronous
    DistBelief workers. The 0.3 weight is the model's ``aux_loss_weight``. Augmentation
    (section 6): "sampling of various sized patches of the image whose size is distributed
    evenly between 8% and 100% of the image area with aspect ratio constrained to the interval
    [3/4, 4/3]": the ``inception`` augmentation (its photometric distortions are not copied).
    """
    return {
        "data": "folder:imagenet",
        "augment": "inception",
        "epochs": 250,
        "batch_size": 256,
        "optimizer": "momentum",
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 2e-4,
        "schedule": "googlenet",
        "ema": 0.9999,
    }


@recipe(
    "resnet2016_imagenet",
    paper="He et al. 2016",
    model="resnet50",
    description="SGD 0.1 momentum 0.9 wd 1e-4 batch 256, ÷10 when error plateaus, 120 epochs",
    models=("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
    + ("resnet50_paper", "resnet101_paper", "resnet152_paper"),
)
def resnet2016_imagenet() -> dict:
    """ResNet on ImageNet.

    Paper: "We use SGD with a mini-batch size of 256. The learning rate starts from 0.1 and is
    divided by 10 when the error plateaus, and the models are trained for up to 60 x 10^4
    iterations. We use a weight decay of 0.0001 and a momentum of 0.9. We do not use dropout".
    600k iterations of 256 images are 120 epochs of ImageNet's 1.28M images. Augmentation
    (section 3.4): "The image is resized with its shorter side randomly sampled in [256, 480]
    for scale augmentation. A 224x224 crop is randomly sampled from an image or its horizontal
    flip ... The standard color augmentation in [AlexNet] is used": the ``resnet`` augmentation.
    """
    return {
        **_IMAGENET_SGD,
        "augment": "resnet",
        "epochs": 120,
        "batch_size": 256,
        "lr": 0.1,
        "weight_decay": 1e-4,
    }


_RESNET_CIFAR = {
    "data": "cifar10",
    "augment": "crop+flip",
    "epochs": 164,
    "batch_size": 128,
    "optimizer": "momentum",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "schedule": "multistep",
    "milestones": [32000, 48000],
    "milestone_unit": "iter",
    "gamma": 0.1,
}


@recipe(
    "resnet2016_cifar",
    paper="He et al. 2016",
    model="resnet20",
    description="SGD 0.1 momentum 0.9 wd 1e-4 batch 128, ÷10 at 32k/48k iterations, 64k",
    models=("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202")
    + ("plain20", "plain32", "plain44", "plain56", "plain110"),
)
def resnet2016_cifar() -> dict:
    """ResNet-20/32/44/56/110 on CIFAR-10.

    Paper: "We use a weight decay of 0.0001 and momentum of 0.9 ... These models are trained
    with a mini-batch size of 128 on two GPUs. We start with a learning rate of 0.1, divide it
    by 10 at 32k and 48k iterations, and terminate training at 64k iterations, which is
    determined on a 45k/5k train/val split". For ResNet-110: "we use 0.01 to warm up the
    training until the training error is below 80% (about 400 iterations), and then go back
    to 0.1" (add ``--warmup-until-error 80``). cnnlab trains on all 50k images (the split only
    chose the length) and stops after 164 epochs = 64k iterations at 391 per epoch; the
    milestones are counted in iterations, so the scheduler steps every iteration. The plain
    nets of Fig. 6 were trained the same way. Augmentation (section 4.2): "4 pixels are
    padded on each side, and a 32x32 crop is randomly sampled from the padded image or its
    horizontal flip": ``crop+flip``.
    """
    return dict(_RESNET_CIFAR)


@recipe(
    "preact2016_cifar",
    paper="He et al. 2016 (identity mappings)",
    model="preact_resnet110",
    description="ResNet's CIFAR recipe for pre-activation nets: 0.1, ÷10 at 32k/48k, 64k iters",
    models=("preact_resnet110", "preact_resnet164", "preact_resnet1001"),
    datasets=("cifar10", "cifar100"),
)
def preact2016_cifar() -> dict:
    """Pre-activation ResNets on CIFAR-10.

    Paper: "The learning rate starts from 0.1, and is divided by 10 at 32k and 48k iterations.
    Following [the ResNet paper], for all CIFAR experiments we warm up the training by using a
    smaller learning rate of 0.01 at the beginning 400 iterations and go back to 0.1 after 400
    iterations ... mini-batch size of 128 on 2 GPUs ... weight decay 0.0001 and momentum 0.9",
    terminating at 64k iterations. cnnlab keeps the 0.01 warm-up until training error falls
    below 80% (which the 400 iterations stood for) and trains 164 epochs = 64k iterations.
    """
    return {**_RESNET_CIFAR, "warmup_until_error": 80.0, "warmup_factor": 0.1}


@recipe(
    "wrn2016_cifar",
    paper="Zagoruyko & Komodakis 2016",
    model="wrn_28_10",
    description="Nesterov 0.1 wd 5e-4 batch 128, ÷5 at 60/120/160 of 200 epochs, dropout 0.3",
    models=("wrn_16_8", "wrn_28_10", "wrn_40_4"),
    datasets=("cifar10", "cifar100"),
)
def wrn2016_cifar() -> dict:
    """Wide ResNets on CIFAR-10.

    Paper: "In all our experiments we use SGD with Nesterov momentum and cross-entropy loss.
    The initial learning rate is set to 0.1, weight decay to 0.0005, dampening to 0, momentum
    to 0.9 and minibatch size to 128. On CIFAR learning rate dropped by 0.2 at 60, 120 and 160
    epochs and we train for total 200 epochs"; dropout 0.3 between the convolutions of a block
    (the model's ``dropout`` argument, set here through ``model_kwargs``). Augmentation: "we
    use horizontal flips and take random crops from image padded by 4 pixels on each side"
    (section 3): ``crop+flip``.
    """
    return {
        "data": "cifar10",
        "augment": "crop+flip",
        "epochs": 200,
        "batch_size": 128,
        "optimizer": "nesterov",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "schedule": "multistep",
        "milestones": [60, 120, 160],
        "gamma": 0.2,
        "model_kwargs": {"dropout": 0.3},
    }


@recipe(
    "densenet2017_cifar",
    paper="Huang et al. 2017",
    model="densenet_bc_100_12",
    description="Nesterov 0.1 wd 1e-4 batch 64, ÷10 at 50% and 75% of 300 epochs",
    models=("densenet_bc_100_12", "densenet_bc_190_40", "densenet_bc_250_24"),
    datasets=("cifar10", "cifar100"),
)
def densenet2017_cifar() -> dict:
    """DenseNets on CIFAR-10.

    Paper: "All the networks are trained using stochastic gradient descent (SGD). On CIFAR and
    SVHN we train using batch size 64 for 300 and 40 epochs, respectively. The initial learning
    rate is set to 0.1, and is divided by 10 at 50% and 75% of the total number of training
    epochs ... we use a weight decay of 10^-4 and a Nesterov momentum of 0.9 without
    dampening". The paper's dropout 0.2 is used only without data augmentation, so it is not set.
    Augmentation (section 4.1): "the standard data augmentation scheme (mirroring/shifting)":
    ``crop+flip``.
    """
    return {
        "data": "cifar10",
        "augment": "crop+flip",
        "epochs": 300,
        "batch_size": 64,
        "optimizer": "nesterov",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "multistep",
        "milestones": [150, 225],
        "gamma": 0.1,
    }


@recipe(
    "mobilenet2017",
    paper="Howard et al. 2017",
    model="mobilenet_v1",
    description="RMSprop 0.045 (eps 1), lr x0.94 every 2 epochs, little weight decay",
    models=("mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"),
)
def mobilenet2017() -> dict:
    """MobileNet v1 on ImageNet.

    Paper: "MobileNet models were trained in TensorFlow using RMSprop with asynchronous
    gradient descent similar to Inception V3 ... we use less regularization and data
    augmentation techniques because small models have less trouble with overfitting ... it was
    important to put very little or no weight decay (l2 regularization) on the depthwise
    filters since their are so few parameters in them". The rates are Inception-v3's (RMSprop
    decay 0.9, epsilon 1.0, learning rate 0.045 decayed every two epochs by 0.94). cnnlab uses
    a small weight decay (4e-5) on all weights and none on biases and BN parameters, as
    the TensorFlow reference does; synchronous training replaces the asynchronous workers.
    Augmentation: the paper says only that small models need less of it; cnnlab uses the
    random-sized crops of Inception's training, which the paper's follows.
    """
    return {
        "data": "folder:imagenet",
        "augment": "inception",
        "epochs": 100,
        "batch_size": 96,
        "optimizer": "rmsprop",
        "lr": 0.045,
        "optimizer_args": {"alpha": 0.9, "eps": 1.0},
        "weight_decay": 4e-5,
        "decay_norm_and_bias": False,
        "schedule": "step",
        "step_size": 2,
        "gamma": 0.94,
    }


@recipe(
    "fast_cifar",
    paper="after Page 2018, Jordan 2024 (fast CIFAR-10 training)",
    model="resnet56",
    description="one-cycle Nesterov, label smoothing, bf16, channels_last, 30 epochs",
)
def fast_cifar() -> dict:
    """A short one-cycle recipe for a stock ResNet-56 on CIFAR-10.

    The fast CIFAR-10 results (Page's DAWNBench ResNet reaching 94% in 24 epochs; Jordan's
    airbench reaching 94% in seconds) rest on a few habits that cnnlab's engine has built in:
    data decoded once and augmented on the GPU a whole batch at a time (crop with padding,
    flip), large batches with a one-cycle learning rate (warm up then anneal to zero),
    Nesterov momentum, label smoothing 0.2, bf16 autocast and channels_last, and an
    exponential moving average of the weights. What they add beyond that (whitening layers,
    lookahead, test-time flip with multi-crop, custom small networks) is not copied: this
    recipe keeps a stock ResNet-56 for 30 epochs. Measured on the shared CIFAR-10 JPEG copy
    (`cnnlab results`, BENCHMARKS.md): 87.94% test top-1 at the final epoch for seed 0, in 70
    minutes of training on a 2-core CPU. The recipe that reproduces a paper's accuracy quickly
    is ``resnet_cifar_fast``, and the fastest is ``speedrun_cifar``.
    """
    return {
        "data": "cifar10",
        "augment": "crop+flip",
        "epochs": 30,
        "batch_size": 512,
        "optimizer": "nesterov",
        "lr": 0.4,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "decay_norm_and_bias": False,
        "schedule": "onecycle",
        "label_smoothing": 0.2,
        "ema": 0.999,
        "amp": True,
        "channels_last": True,
    }


@recipe(
    "resnet_cifar_fast",
    paper="He et al. 2016; Goyal et al. 2017; He et al. 2019 (bag of tricks)",
    model="resnet20",
    description="ResNet's CIFAR nets in 40 epochs: warm-up + cosine, Nesterov, smoothing 0.1",
)
def resnet_cifar_fast() -> dict:
    """ResNet-20/32/44/56 on CIFAR-10 in a quarter of the paper's 164 epochs.

    Aim: the final-epoch accuracy of ``resnet2016_cifar`` (164 epochs) less at most 0.2 pp,
    in 40 epochs, without test-time augmentation. Built from the short-schedule literature
    rather than tuned here: batch 256 with the rate scaled linearly to 0.2 and warmed up over
    2 epochs (Goyal et al. 2017), a cosine decay to zero (Loshchilov & Hutter 2017) in place
    of the step decays, Nesterov momentum 0.9, label smoothing 0.1 and no weight decay on
    biases and BatchNorm parameters (He et al. 2019, "Bag of tricks"), and weight decay 5e-4
    instead of 1e-4, since a short schedule regularises less. Measured on the shared CIFAR-10
    JPEG copy (BENCHMARKS.md): 87.54 ± 0.22% over seeds 0, 1, 2 at the final epoch, against
    87.48% for ``resnet2016_cifar`` after its 164 epochs.
    """
    return {
        "data": "cifar10",
        "augment": "crop+flip",
        "epochs": 40,
        "batch_size": 256,
        "optimizer": "nesterov",
        "lr": 0.2,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "decay_norm_and_bias": False,
        "schedule": "cosine",
        "warmup_epochs": 2,
        "label_smoothing": 0.1,
        "channels_last": True,
    }


# Jordan 2024's rates are for a summed loss; cnnlab's loss is the batch mean, so his SGD rates
# are multiplied by the batch (and by 81 for the head, whose logits cnnlab scales by 1/9 where he
# divides by 256 with a unit-std head). Muon's rate needs no change: orthogonalisation removes
# the gradient's scale.
SPEEDRUN_BATCH = 2000
SPEEDRUN_NORM_BATCH = 1000  # images BatchNorm normalises at a time, in any layout (docstring)
SPEEDRUN_HEAD_LR = 0.67 * SPEEDRUN_BATCH / 256**2 * 9**2  # = 1.66
SPEEDRUN_DECAY_PER_STEP = 2e-6 * SPEEDRUN_BATCH  # Jordan's lr x weight decay of every SGD group


@recipe(
    "speedrun_cifar",
    paper="Page 2018; Jordan 2024 (airbench94 with Muon)",
    model="speedrun_cifar_net",
    description="Jordan's airbench94 with Muon: whitening, dirac, alternating flips, 8 epochs",
    tta="flipshift-adaptive",
)
def speedrun_cifar() -> dict:
    """Jordan's airbench94 recipe with Muon (2024), as cnnlab engine features.

    Jordan trains his 2M-parameter net to 94.01% mean test accuracy on CIFAR-10 in 8 epochs at
    batch 2000: the first conv initialised to whiten 2x2 patches and frozen (its bias trained
    for 3 epochs), dirac-initialised convs, BatchNorm scales frozen, conv filters on Muon (rate
    0.24, momentum 0.6, renormalised), BatchNorm shifts at 64x the head's SGD rate (Nesterov
    0.85), the rate falling linearly to 0, label smoothing 0.2, random 2-pixel translation with
    reflect padding and alternating flips, and test-time augmentation with mirrors and 1-pixel
    translations (``cnnlab evaluate --tta flipshift``). Here in bf16 autocast where the CPU has
    it natively, channels_last, with the translations tested only where the mirror pair leaves
    an image unsure (``--tta flipshift-adaptive``: the same answers as ``flipshift`` on the
    shipped weights, in less than half its time). BatchNorm sees 1,000 images at a time in
    either thread layout (``micro_batch``): each of two processes' halves, or one process's
    batch in two pieces (the faster layout on AMX). Accuracy and time on this repository's CPU:
    ``benchmarks/time_to_accuracy.py`` (BENCHMARKS.md). Left out after measuring: small crops
    in the first epochs (``--small-crop 28 --small-crop-epochs 3``: about 11% less time, 0.19 pp
    less accuracy) and stopping after 7 epochs (11% less time, 0.39 pp less).
    """
    return {
        "data": "cifar10",
        "epochs": 8,
        "batch_size": SPEEDRUN_BATCH,
        "micro_batch": SPEEDRUN_NORM_BATCH,
        "augment": "translate2+altflip",
        "optimizer": "muon",
        "lr": 0.24,
        "momentum": 0.6,
        "optimizer_args": {"sgd_lr": SPEEDRUN_HEAD_LR, "sgd_momentum": 0.85},
        "weight_decay": SPEEDRUN_DECAY_PER_STEP / SPEEDRUN_HEAD_LR,
        "schedule": "linear",
        "lr_end_factor": 0.0,
        "label_smoothing": 0.2,
        "whitening": True,
        "whitening_bias_epochs": 3,
        "dirac_init": True,
        "freeze_norm_weights": True,
        "norm_bias_lr_scale": 64.0,
        "channels_last": True,
    }


@recipe(
    DIGITS_RECIPE,
    paper="cnnlab",
    model="lenet5",
    description="a short recipe for the bundled digits: momentum 0.05, 10 epochs, random crops",
)
def digits() -> dict:
    """Any model on scikit-learn's bundled digits, the dataset that needs no download.

    No paper trained on these 1,797 8x8 images (upsampled to 32x32): this is the short recipe
    ``cnnlab train MODEL`` uses without ``--data`` when the model's paper trained it elsewhere,
    so that a first run finishes in a minute on a CPU. The run says which paper recipe to use
    on the paper's dataset. Momentum 0.9 at 0.05, batches of 128, 10 epochs, random crops of
    the images padded by 2 pixels (no flips: a mirrored digit is another digit or none).
    """
    return {
        "data": "digits",
        "augment": "crop",
        "epochs": 10,
        "batch_size": 128,
        "optimizer": "momentum",
        "lr": 0.05,
        "momentum": 0.9,
    }


def recipes_table():
    """A rich table of every recipe, as ``cnnlab recipes`` prints it."""
    from rich.table import Table

    table = Table(title="training recipes (cnnlab train MODEL --recipe NAME)")
    columns = ("recipe", "paper", "model", "data", "augment", "epochs", "optimizer", "lr")
    for column in (*columns, "schedule"):
        table.add_column(column, no_wrap=column in ("recipe", "model"))
    table.add_column("what it does")
    for entry in list_recipes():
        s = entry.settings
        table.add_row(
            entry.name,
            entry.paper,
            entry.model,
            s.get("data", ""),
            s["augment"],
            str(s.get("epochs", "")),
            s.get("optimizer", ""),
            f"{s.get('lr', ''):g}",
            s.get("schedule", "none"),
            entry.description,
        )
    return table
