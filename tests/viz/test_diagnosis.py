"""The cost-curve diagnosis on synthetic metric histories of each kind the lectures describe."""

import math
import random

import pytest
from synthetic_runs import history, write_metrics

from cnnlab.errors import CnnlabError
from cnnlab.run_metrics import read_metrics
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


def _flat_rows(lr: float, level: float = 175.0) -> list[dict[str, float]]:
    """A loss that sits at ``level`` from the first epoch, at rate ``lr``."""
    rows = history("plateau", epochs=5)
    for index, row in enumerate(rows):
        row.update(lr=lr, train_loss=level * (1 - 0.001 * index), train_top1=10.0)
    return rows


def test_a_flat_loss_at_a_huge_rate_is_saturation_not_a_rate_too_low():
    saturated = diagnose(_flat_rows(1e6), optimizer="momentum")
    assert saturated.kinds == ["saturated"] and "far too high" in saturated.text
    assert "--lr 0.01" in saturated.text  # momentum's own default rate
    assert "too low" not in saturated.text.replace("not too low", "")
    # the same curve at a modest rate is the lectures' "rate too low"
    assert diagnose(_flat_rows(1e-4), optimizer="momentum").kinds == ["plateau"]
    # what is huge depends on the optimizer: 1.0 is Newton's ordinary step
    assert diagnose(_flat_rows(1.0), optimizer="newton").kinds == ["plateau"]
    assert diagnose(_flat_rows(1.0), optimizer="adam").kinds == ["saturated"]


def test_an_epoch_whose_every_step_was_skipped_is_named():
    rows = history("healthy", epochs=6)
    for row in rows[3:]:
        row.update(train_loss=math.nan, train_top1=math.nan, train_top5=math.nan)
        row["skipped_steps"] = 11
    rows[2]["skipped_steps"] = 4
    diagnosis = diagnose(rows)
    assert diagnosis.kinds[0] == "skipped"
    assert "epoch(s) 4, 5, 6 was skipped" in diagnosis.text and "37 step(s)" in diagnosis.text
    assert "diverging" not in diagnosis.kinds  # the trained epochs themselves were fine


def _real_run(tmp_path, name: str, **options) -> str:
    from cnnlab.training import train

    train(
        model=options.pop("model", "lenet5"),
        data="digits",
        epochs=3,
        batch_size=128,
        threads=1,
        out=str(tmp_path / name),
        **options,
    )
    return diagnose_run(tmp_path / name)


def test_real_short_runs_tell_saturation_a_rate_too_low_and_skipped_steps_apart(tmp_path):
    """LeNet-5's RBF output clamps at lr 1e6 (the loss sits near 175); at 1e-6 it barely moves;
    a ReLU net at 1e30 is thrown to non-finite losses, whose steps are skipped."""
    saturated = _real_run(tmp_path, "huge", lr=1e6)
    assert saturated.kinds == ["saturated"], saturated.text
    too_low = _real_run(tmp_path, "tiny", lr=1e-6)
    assert too_low.kinds == ["plateau"] and "too low" in too_low.text, too_low.text
    skipped = _real_run(tmp_path, "skip", model="lenet5_modern", lr=1e30, on_nonfinite="skip")
    assert skipped.kinds[0] == "skipped" and "epoch(s) 2, 3" in skipped.text, skipped.text
    rows = read_metrics(tmp_path / "skip" / "metrics.csv")
    assert "train_loss" not in rows[1] or math.isnan(rows[1]["train_loss"])  # NaN, not 0.0
    assert rows[1]["skipped_steps"] == 11


def test_a_rate_cut_while_the_loss_still_fell_fast_is_not_called_healthy():
    """LeNet-5 on the digits at lr 1e-4 (`cnnlab train lenet5 --lr 1e-4`): the loss starts
    falling late, the recipe's steps cut the rate while it falls 13% an epoch, and the run
    flattens at 65% test top-1 where lr 1e-3 reaches 98%."""
    losses = [69.87, 49.68, 49.30, 49.21, 49.12, 48.81, 48.09, 45.42, 39.58, 35.60]
    losses += [33.10, 32.08, 31.49, 30.65, 29.82, 30.17, 29.68, 29.74, 29.15, 29.21]
    rates = [1e-4] * 9 + [3.33e-5] * 4 + [1.11e-5] * 3 + [3.7e-6] * 4
    top1 = [10.3] * 6 + [14.7, 21.4, 37.8, 54.7, 57.5, 59.2, 62.2, 63.6, 63.9, 64.2]
    top1 += [64.4, 64.2, 64.4, 64.7]
    rows = [
        {"epoch": e + 1, "lr": lr, "train_loss": loss, "test_loss": loss, "train_top1": t - 4}
        | {"test_top1": t}
        for e, (lr, loss, t) in enumerate(zip(rates, losses, top1, strict=True))
    ]
    (finding,) = diagnose(rows).findings
    assert finding.kind == "decayed_early" and finding.is_problem
    assert "fell 12.9% in epoch 9" in finding.evidence and "0.0001 -> 3.33e-05" in finding.evidence
    assert "raise the learning rate" in finding.message
    # the same losses at a constant rate: no cut, so nothing is blamed on a schedule
    constant = [{**row, "lr": 1e-4} for row in rows]
    assert "decayed_early" not in diagnose(constant).kinds
    # nor when the training set ends fitted: the cut came late enough
    fitted = [{**row, "train_top1": 95.0} for row in rows]
    assert "decayed_early" not in diagnose(fitted).kinds
