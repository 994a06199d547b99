"""What the lab computes, checked against closed forms and torch (no browser here)."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.lab import Lab, export_page
from cnnlab.lab.content import EXPORT_SLIDERS, RACE_OPTIMIZERS, export_race_keys, race_key
from cnnlab.optim.surfaces import get_function
from cnnlab.viz.inputs import fixed_batches

ANGLE = math.radians(30)  # the ravine's tilt


def ravine_gradient(x: float, y: float) -> np.ndarray:
    """∇ of 0.05·a² + 5·c² with a, c the coordinates along and across the tilted valley."""
    c, s = math.cos(ANGLE), math.sin(ANGLE)
    along, across = c * x + s * y, -s * x + c * y
    return 0.1 * along * np.array([c, s]) + 10.0 * across * np.array([-s, c])


def path(run: dict, step: int) -> np.ndarray:
    return np.array([run["x"][step], run["y"][step]])


def test_sgd_path_is_gradient_descent_with_the_scaled_tuned_rate():
    ravine = get_function("ravine")
    run = Lab().race("ravine", "sgd", lr_scale=0.3)
    lr = 0.3 * ravine.lr("sgd")
    assert run["lr"] == pytest.approx(lr)
    point = np.array(ravine.start)
    for step in range(1, 4):
        point = point - lr * ravine_gradient(*point)
        np.testing.assert_allclose(path(run, step), point, atol=1e-5)


def test_momentum_slider_sets_the_heavy_ball_coefficient():
    ravine = get_function("ravine")
    run = Lab().race("ravine", "momentum", momentum=0.5)
    lr = ravine.lr("momentum")
    point, velocity = np.array(ravine.start), np.zeros(2)
    for step in range(1, 4):  # torch's form: v <- mu v + g, theta <- theta - lr v
        velocity = 0.5 * velocity + ravine_gradient(*point)
        point = point - lr * velocity
        np.testing.assert_allclose(path(run, step), point, atol=1e-5)


def test_adam_betas_and_rmsprop_decay_follow_their_update_rules():
    ravine = get_function("ravine")
    lab = Lab()
    adam = lab.race("ravine", "adam", beta1=0.5, beta2=0.99)
    lr, eps = ravine.lr("adam"), 1e-8
    point, m, v = np.array(ravine.start), np.zeros(2), np.zeros(2)
    for step in range(1, 4):  # Kingma & Ba, Algorithm 1
        g = ravine_gradient(*point)
        m, v = 0.5 * m + 0.5 * g, 0.99 * v + 0.01 * g**2
        m_hat, v_hat = m / (1 - 0.5**step), v / (1 - 0.99**step)
        point = point - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(path(adam, step), point, atol=1e-5)
    rmsprop = lab.race("ravine", "rmsprop", beta2=0.9)
    g = ravine_gradient(*ravine.start)  # first step: lr g / sqrt((1 - alpha) g^2)
    expected = np.array(ravine.start) - ravine.lr("rmsprop") * np.sign(g) / math.sqrt(0.1)
    np.testing.assert_allclose(path(rmsprop, 1), expected, atol=1e-5)


def test_newton_solves_the_quadratic_ravine_in_one_step_from_a_clicked_start():
    run = Lab().race("ravine", "newton", x=1.5, y=-2.0)
    assert path(run, 0).tolist() == [1.5, -2.0]
    np.testing.assert_allclose(path(run, 1), [0.0, 0.0], atol=1e-6)
    assert run["steps_to_tolerance"] == 1 and run["lr"] is None and not run["diverged"]
    assert run["loss"][1] == pytest.approx(0.0, abs=1e-10)


def test_feature_maps_have_the_shape_the_conv_arithmetic_gives(lab):
    convs = [(n, m) for n, m in lab.loaded.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    name, conv = convs[0]
    channels, height, width = lab.loaded.input_size
    side = (height - conv.kernel_size[0] + 2 * conv.padding[0]) // conv.stride[0] + 1
    answer = lab.features(name)
    assert answer["shape"] == [conv.out_channels, side, side]
    assert answer["shown"] == min(conv.out_channels, 16)
    assert answer["strip"].startswith("data:image/png;base64,")
    with pytest.raises(CnnlabError, match="layer"):
        lab.features("no.such.layer")


def test_saliency_ranks_the_models_own_probabilities_and_honours_the_target(lab):
    with torch.no_grad():
        probabilities = torch.softmax(lab.loaded.model(lab.batch), dim=1)[0]
    top = lab.saliency()
    expected = probabilities.topk(5)
    assert [c["index"] for c in top["top5"]] == expected.indices.tolist()
    np.testing.assert_allclose([c["p"] for c in top["top5"]], expected.values, rtol=1e-5)
    assert top["target"] == top["top5"][0]["index"]
    second = top["top5"][1]["index"]
    chosen = lab.saliency(second)
    assert chosen["target"] == second
    assert chosen["probability"] == pytest.approx(float(probabilities[second]), rel=1e-5)
    assert set(chosen["maps"]) == {"gradient", "guided", "deconvnet", "occlusion"}
    with pytest.raises(CnnlabError, match="10 classes"):
        lab.saliency(10)


def test_landscape_centre_is_the_checkpoints_loss_on_its_training_batches(lab):
    result = lab.compute_landscape()
    assert result["state"] == "done" and len(result["losses"]) == 5
    batches, _ = fixed_batches("digits", 1, 64, lab.loaded.input_size)
    with torch.no_grad():
        inputs, labels = batches[0]
        loss = F.cross_entropy(lab.loaded.model.eval()(inputs), labels)
    assert result["losses"][2][2] == pytest.approx(float(loss), rel=1e-4)
    assert result["alphas"] == pytest.approx([-1, -0.5, 0, 0.5, 1])


def test_model_name_has_no_landscape():
    lab = Lab("lenet5_modern")
    assert not lab.page_data()["landscape"]["available"]
    with pytest.raises(CnnlabError, match="checkpoint"):
        lab.landscape()


def test_export_holds_every_grid_path_and_fetches_nothing(tmp_path):
    out = export_page(Lab(), tmp_path / "lab.html", surfaces=["saddle"], progress=False)
    page = out.read_text()
    references = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"([^\"]*)\"", page)
    assert all(ref.startswith("data:") for ref in references), references
    keys = export_race_keys(get_function("saddle"))
    adam_grid = (
        len(EXPORT_SLIDERS["lr_scale"])
        * len(EXPORT_SLIDERS["beta1"])
        * len(EXPORT_SLIDERS["beta2"])
    )
    assert sum(1 for o, _ in keys if o == "adam") == adam_grid
    assert {o for o, _ in keys} == set(RACE_OPTIMIZERS)
    for optimizer, values in keys:
        assert f'"{race_key("saddle", optimizer, values)}":' in page


def test_unknown_surface_is_one_line_and_exit_2(cnnlab, tmp_path):
    result = cnnlab("lab", "--export", tmp_path / "lab.html", "--surfaces", "rosenbrok")
    assert result.returncode == 2
    assert "rosenbrock" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lab.html").exists()


def test_serving_without_the_lab_extra_says_what_to_install(cnnlab, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # an import of it now fails
    monkeypatch.delitem(sys.modules, "cnnlab.lab.server", raising=False)
    result = cnnlab("lab", "--no-browser")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cnnlab lab needs uvicorn: pip install 'cnnlab[lab]'"
    ]


def test_command_serves_on_localhost_and_stops_on_ctrl_c():
    command = [sys.executable, "-m", "cnnlab.cli", "lab", "lenet5_modern", "--no-browser"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.fullmatch(r"cnnlab lab at (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops it\)\n", line)
        assert url, line + process.stderr.read()
        with urllib.request.urlopen(url[1], timeout=60) as response:
            assert response.status == 200
            assert "<title>cnnlab lab</title>" in response.read().decode()
        with urllib.request.urlopen(url[1] + "api/race?surface=ravine&optimizer=newton") as answer:
            assert json.load(answer)["steps_to_tolerance"] == 1
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.strip() == "lab stopped"


def test_users_image_feeds_the_convolution_view_and_the_model(tmp_path, checkpoint):
    from PIL import Image

    pixels = np.zeros((40, 64, 3), dtype=np.uint8)
    pixels[:, 32:] = 255  # one vertical edge
    Image.fromarray(pixels).save(tmp_path / "edge.png")
    lab = Lab(str(checkpoint), str(tmp_path / "edge.png"))
    user = lab.convolution_data()["inputs"][-1]
    assert (user["name"], user["channels"], user["h"], user["w"]) == ("user", 3, 20, 32)
    assert lab.display.shape == (1, 32, 32)  # LeNet's grey 32x32 input
    assert float(lab.display[0, :, :14].max()) == 0.0 and float(lab.display[0, :, 18:].min()) == 1.0
    with pytest.raises(CnnlabError, match="no image at"):
        Lab(str(checkpoint), str(tmp_path / "missing.png"))
