"""The one model contract, checked over every registered model.

Every model carries the same attributes, with the values its registry entry declares, and the
timm model API (``num_features``, ``forward_features``, ``forward_head``, ``reset_classifier``).
Shapes are checked on the meta device (free); that ``forward`` is ``forward_head`` after
``forward_features`` is checked on real numbers for the smallest model of each class.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path

import pytest
import torch

import cnnlab.models
from cnnlab.models import list_models, model_entry
from cnnlab.models.resolve import create_on_meta
from cnnlab.nn.classifier import ImageClassifier
from cnnlab.training.recipes import get_recipe, paper_recipes_for

MODELS = list_models()
CLASSES, CHANNELS, BATCH = 5, 2, 2


def outputs_of(result: torch.Tensor | tuple) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name", MODELS)
def test_attributes_come_from_the_registry_entry(name):
    entry = model_entry(name)
    model = create_on_meta(name, in_chans=CHANNELS)
    assert isinstance(model, ImageClassifier)
    channels, height, width = entry.default_input_size(entry.options({}))
    assert model.default_input_size == (CHANNELS, height, width)
    assert model.default_loss == entry.default_loss
    assert model.aux_loss_weight == entry.aux_loss_weight
    assert entry.paper and entry.year is not None
    # the recipes it names exist, and come first among the recipes cnnlab train looks at
    assert all(get_recipe(recipe).name == recipe for recipe in entry.recipes)
    assert paper_recipes_for(name)[: len(entry.recipes)] == list(entry.recipes)


@pytest.mark.parametrize("name", MODELS)
def test_timm_api_shapes_and_reset_classifier(name):
    model = create_on_meta(name, num_classes=CLASSES).eval()
    x = torch.empty(BATCH, *model.default_input_size, device="meta")
    features = model.forward_features(x)
    assert features.dim() == 4 and features.shape[:2] == (BATCH, model.num_features)
    assert model.forward_head(features).shape == (BATCH, CLASSES)

    model.reset_classifier(CLASSES + 3)
    assert model.forward_head(features).shape == (BATCH, CLASSES + 3)
    # auxiliary classifiers are resized too, and count in the training loss; the other
    # models' training forward is the same pass as above (test_every_model runs it)
    assert (len(model.classifier_layers) > 1) == (model.aux_loss_weight > 0)
    if len(model.classifier_layers) > 1:
        outputs = outputs_of(model.train()(x))
        assert len(outputs) == len(model.classifier_layers)
        assert all(tuple(out.shape) == (BATCH, CLASSES + 3) for out in outputs)


@pytest.mark.parametrize(("name", "heads"), [("googlenet", 3), ("inception_v3", 2)])
def test_reset_classifier_without_the_auxiliary_heads(name, heads):
    full = create_on_meta(name)
    lean = create_on_meta(name, aux_logits=False)
    lean.reset_classifier(CLASSES)
    assert lean.get_classifier().out_features == CLASSES
    scoring = [layer for layer in full.classifier_layers if full.get_submodule(layer) is not None]
    assert len(scoring) == heads


def _one_of_each_class() -> list[str]:
    """The first model of each class (read from the builders' return annotations)."""
    first: dict[type, str] = {}
    for name in MODELS:
        returned = typing.get_type_hints(model_entry(name).builder)["return"]
        first.setdefault(returned, name)
    return sorted(first.values())


@pytest.mark.parametrize("name", _one_of_each_class())
def test_forward_is_head_after_features(name):
    """On real numbers, with the builder called directly (it describes its model the same)."""
    torch.manual_seed(0)
    builder = getattr(sys.modules[model_entry(name).builder.__module__], name)
    model = builder(num_classes=CLASSES).eval()
    reference = create_on_meta(name, num_classes=CLASSES)
    assert model.default_input_size == reference.default_input_size
    assert (model.default_loss, model.aux_loss_weight) == (
        reference.default_loss,
        reference.aux_loss_weight,
    )
    x = torch.randn(1, *model.default_input_size)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_head(model.forward_features(x)))
    assert model.get_classifier() is model.get_submodule(model.classifier_layers[0])


def test_every_family_file_is_imported_by_the_package():
    """A family file missing from models/__init__.py would silently leave the zoo."""
    folder = Path(cnnlab.models.__file__).parent
    families = [
        p.stem
        for p in folder.glob("*.py")
        if not p.stem.startswith("_") and "@register_model(" in p.read_text()
    ]
    assert len(families) >= 14
    assert all(f"cnnlab.models.{family}" in sys.modules for family in families)
    registered = {model_entry(name).builder.__module__ for name in MODELS}
    assert registered == {f"cnnlab.models.{family}" for family in families}
