"""The cost-curve diagnosis on synthetic metric histories of each kind the lectures describe."""

import math
import random

import pytest
from synthetic_runs import history, write_metrics

from cnnlab.errors import CnnlabError
from cnnlab.viz.diagnosis import diagnose, diagnose_run


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("healthy", ["healthy"]),
        ("step_lr", ["healthy"]),
        ("still_improving", ["still_improving"]),
        ("overfitting", ["overfitting"]),
        ("plateau", ["plateau"]),
        ("stalled", ["stalled"]),
        ("oscillating", ["oscillating"]),
        ("diverging", ["diverging"]),
        ("exploding", ["diverging"]),
    ],
)
def test_each_kind_of_curve_is_named(kind, expected):
    assert diagnose(history(kind)).kinds == expected


def test_the_advice_matches_the_lectures():
    diverging = diagnose(history("diverging")).text
    assert "learning rate is too high" in diverging and "--clip" in diverging
    assert "--lr 0.3" in diverging  # a tenth of the run's rate, 3.0
    assert "too low" in diagnose(history("plateau")).text
    assert "lr-find" in diagnose(history("plateau")).text
    assert "train longer" in diagnose(history("still_improving")).text
    stalled = diagnose(history("stalled"))
    assert "lr-find" in stalled.text and "lr 0.0197 -> 0" in stalled.text
    assert stalled.findings[0].is_problem
    overfit = diagnose(history("overfitting"))
    assert "epoch 4" in overfit.text  # where the synthetic test loss is lowest
    assert "regularise" in overfit.text
    assert (
        overfit.findings[0].is_problem and not diagnose(history("healthy")).findings[0].is_problem
    )


def test_exploding_names_the_first_non_finite_epoch():
    text = diagnose(history("exploding")).text
    assert "non-finite from epoch 6" in text


def test_small_noise_does_not_turn_a_healthy_run_into_an_oscillating_one():
    rng = random.Random(0)
    rows = history("healthy")
    for row in rows:
        for key in ("train_loss", "test_loss"):
            row[key] *= 1 + 0.01 * rng.uniform(-1, 1)
    assert diagnose(rows).kinds == ["healthy"]


def test_a_single_epoch_is_too_short_to_judge():
    assert diagnose(history("healthy")[:1]).kinds == ["too_short"]


def test_a_flat_loss_is_never_called_healthy():
    rows = history("plateau")[:2]  # too few epochs for the plateau rule, still not healthy
    assert "healthy" not in diagnose(rows).kinds


def test_diagnose_run_reads_the_run_directory(tmp_path):
    write_metrics(tmp_path / "run-a", history("overfitting"))
    diagnosis = diagnose_run(tmp_path / "run-a")
    assert diagnosis.kinds == ["overfitting"]
    assert diagnosis.text.startswith("diagnosis of run-a:")
    assert diagnosis.to_dict()["findings"][0]["kind"] == "overfitting"


def test_diagnose_run_without_metrics_says_what_to_pass(tmp_path):
    with pytest.raises(CnnlabError, match="no metrics.csv"):
        diagnose_run(tmp_path)


def test_history_fixtures_have_the_shapes_they_claim():
    # the synthetic curves themselves: overfitting's test loss has an interior minimum,
    # exploding ends in NaN, still_improving falls every epoch
    test_loss = [row["test_loss"] for row in history("overfitting")]
    assert 0 < test_loss.index(min(test_loss)) < len(test_loss) - 1
    assert math.isnan(history("exploding")[-1]["train_loss"])
    falling = [row["train_loss"] for row in history("still_improving")]
    assert all(b < a for a, b in zip(falling, falling[1:], strict=False))
