"""The served race: one path per optimizer from ``/api/race``, equal to the optimizer lab's own."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlencode

import pytest
import torch

from cnnlab.lab import Lab
from cnnlab.lab.content import RACE_OPTIMIZERS, _race_path, _tuned_lr
from cnnlab.lab.server import LabServer
from cnnlab.optim.lab import run_optimizer
from cnnlab.optim.registry import optimizer_entry
from cnnlab.optim.surfaces import get_function

SURFACE = "saddle"  # 200 steps, cheap, and every optimizer ends somewhere different


@pytest.fixture(scope="module")
def server():
    server = LabServer(Lab())
    server.start_in_thread()
    yield server
    server.stop()


def ask(server: LabServer, **params: object) -> dict:
    with urllib.request.urlopen(f"{server.url}api/race?{urlencode(params)}", timeout=120) as r:
        return json.load(r)


def direct(optimizer: str, lr_scale: float = 1.0) -> torch.Tensor:
    function = get_function(SURFACE)
    lr = _tuned_lr(function, optimizer)
    if lr is not None and optimizer_entry(optimizer).order == 1:
        lr *= lr_scale
    hyperparameters = {"nesterov": {"momentum": 0.9}, "momentum": {"momentum": 0.9}}
    hyperparameters |= {"adam": {"betas": (0.9, 0.999)}, "rmsprop": {"alpha": 0.999}}
    run = run_optimizer(
        function,
        optimizer,
        steps=function.steps,
        start=function.start,
        lr=lr,
        hyperparameters=hyperparameters.get(optimizer),
    )
    return run.points


def served_points(answer: dict) -> torch.Tensor:
    return torch.tensor([answer["x"], answer["y"]], dtype=torch.float64).T


@pytest.mark.parametrize("lr_scale", [1.0, 3.0])
def test_every_optimizer_answers_with_the_optimizer_labs_path(server, lr_scale):
    _race_path.cache_clear()
    steps = get_function(SURFACE).steps
    paths = {}
    for optimizer in RACE_OPTIMIZERS:
        answer = ask(server, surface=SURFACE, optimizer=optimizer, lr_scale=lr_scale)
        assert answer["optimizer"] == optimizer
        assert len(answer["x"]) == len(answer["y"]) == len(answer["loss"]) == steps + 1
        expected = direct(optimizer, lr_scale)
        torch.testing.assert_close(served_points(answer), expected, rtol=0, atol=5e-6)
        paths[optimizer] = served_points(answer)
    # ten different paths: no optimizer's answer stands in for another's
    assert len({tuple(p.flatten().tolist()) for p in paths.values()}) == len(RACE_OPTIMIZERS)


def test_a_slider_answer_from_the_cache_is_the_fresh_one(server):
    before = {o: ask(server, surface=SURFACE, optimizer=o, lr_scale=0.3) for o in RACE_OPTIMIZERS}
    _race_path.cache_clear()
    for optimizer in RACE_OPTIMIZERS:
        fresh = ask(server, surface=SURFACE, optimizer=optimizer, lr_scale=0.3)
        assert fresh == before[optimizer]
    # the learning-rate factor moves the first-order runs only
    after = {o: ask(server, surface=SURFACE, optimizer=o, lr_scale=10.0) for o in RACE_OPTIMIZERS}
    changed = {o for o in RACE_OPTIMIZERS if after[o]["x"] != before[o]["x"]}
    assert changed == {o for o in RACE_OPTIMIZERS if optimizer_entry(o).order == 1}


def test_a_start_that_is_not_finite_is_one_clear_error(server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        ask(server, surface=SURFACE, optimizer="sgd", x="inf", y=0)
    assert refused.value.code == 400
    assert "finite" in json.load(refused.value)["error"]
