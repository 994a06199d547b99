"""Random arguments at the public API: only a ``CnnlabError`` or success may come out.

Hypothesis throws values of every kind (None, strings, floats where ints belong, NaN,
infinities, negative numbers, lists, booleans) at config resolution, model creation on the
meta device, sizing, spec building, optimizer creation (with one step on a tiny problem) and
evaluation; any other exception is a traceback a user would see. Bounded: nothing trains.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab import create_model, create_optimizer, list_models, list_optimizers, summary
from cnnlab.errors import CnnlabError
from cnnlab.evaluation import evaluate
from cnnlab.models._registry import OPTION_DOMAINS
from cnnlab.nn.spec import build_spec
from cnnlab.optim import optimizer_entry
from cnnlab.training.config import TrainConfig, resolve_config

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-3, max_value=300), max_size=4),
    st.tuples(st.floats(), st.floats()),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
#: numbers near the edges of the usual domains, which are likelier to hit a boundary
EDGE_NUMBERS = st.sampled_from([0, 1, -1, 0.5, 1.0, 1.5, 2, 3, 32, 1e-9, -0.0, 1e9, 2.5])
VALUES = st.one_of(ANY_VALUE, EDGE_NUMBERS)

FIELDS = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("out", "model")]
MODELS = ["lenet5", "resnet20", "alexnet_paper", "vgg11", "mobilenet_v1_025", "googlenet_paper"]
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def only_cnnlab_errors(call) -> object | None:
    """Run ``call``; a ``CnnlabError`` is an answer, anything else fails the test."""
    try:
        return call()
    except CnnlabError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), message  # one line for the CLI
        return None


@FAST
@given(
    model=st.one_of(st.sampled_from(MODELS), VALUES),
    overrides=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3),
)
def test_config_resolution(model, overrides):
    only_cnnlab_errors(lambda: resolve_config(model, **overrides))


MODEL_OPTIONS = [
    *OPTION_DOMAINS,
    *("two_towers", "aux_logits", "shortcut", "layers", "block_config", "width", "stem_width"),
]


@FAST
@given(
    name=st.one_of(st.sampled_from(list_models()), VALUES),
    num_classes=VALUES,
    in_chans=VALUES,
    options=st.dictionaries(st.sampled_from(MODEL_OPTIONS), VALUES, max_size=2),
)
def test_model_creation_on_meta(name, num_classes, in_chans, options):
    def build():
        with torch.device("meta"):
            return create_model(name, num_classes=num_classes, in_chans=in_chans, **options)

    only_cnnlab_errors(build)


@FAST
@given(
    model=st.one_of(
        st.sampled_from(["lenet5", "resnet20", "conv6k5-pool2-fc10", "[conv8]x2-fc4"]), VALUES
    ),
    input_size=st.one_of(VALUES, st.lists(st.integers(-2, 64), min_size=1, max_size=4)),
    batch_size=VALUES,
    depth=VALUES,
    all_activations=VALUES,
)
def test_sizing(model, input_size, batch_size, depth, all_activations):
    only_cnnlab_errors(
        lambda: summary(
            model,
            input_size=input_size,
            batch_size=batch_size,
            depth=depth,
            all_activations=all_activations,
        )
    )


@FAST
@given(
    spec=st.one_of(st.text(alphabet="convfcpoolkx[]-0123456789sp", max_size=24), VALUES),
    in_chans=VALUES,
    input_size=VALUES,
)
def test_spec_building(spec, in_chans, input_size):
    def build():
        with torch.device("meta"):
            return build_spec(spec, in_chans=in_chans, input_size=input_size)

    only_cnnlab_errors(build)


OPTIMIZERS = [entry.name for entry in list_optimizers()]


@st.composite
def optimizer_arguments(draw):
    name = draw(st.one_of(st.sampled_from(OPTIMIZERS), VALUES))
    known = list(optimizer_entry(name).defaults) if name in OPTIMIZERS else ["lr"]
    keys = st.sampled_from([*known, "weight_decay", "nonsense"])
    hyperparameters = draw(st.dictionaries(keys, VALUES, max_size=3))
    return name, hyperparameters


@FAST
@given(arguments=optimizer_arguments())
def test_optimizer_creation_and_one_step(arguments):
    name, hyperparameters = arguments
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    optimizer = only_cnnlab_errors(lambda: create_optimizer(name, [w], **hyperparameters))
    if optimizer is None:
        return

    def closure():
        optimizer.zero_grad()
        loss = (w**2).sum() + torch.cos(w).sum()
        loss.backward()
        return loss

    only_cnnlab_errors(lambda: optimizer.step(closure))
    # every accepted setting keeps the parameters finite on this tame problem after one step
    assert all(math.isfinite(v) for v in w.detach().tolist())


@settings(max_examples=40, deadline=None, database=None)
@given(
    checkpoints=st.one_of(VALUES, st.just("/nonexistent/run")),
    tta=VALUES,
    batch_size=VALUES,
    use_ema=VALUES,
    data=VALUES,
)
def test_evaluation_arguments(checkpoints, tta, batch_size, use_ema, data):
    only_cnnlab_errors(
        lambda: evaluate(
            checkpoints, tta=tta, batch_size=batch_size, use_ema=use_ema, data=data, device="cpu"
        )
    )
