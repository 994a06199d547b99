"""Reading the cost curves: what a run's metrics say about its learning rate and its length.

The lectures' "interpreting the cost function": the shape of the training loss tells how to
change the step size. Loss that rises or becomes NaN means the rate is too high (lower it, or
clip the gradient norm); loss that zig-zags epoch to epoch means it is on the high side; loss
that barely moves from the start means it is too low, unless the rate is huge: then the
network saturated in its first steps (outputs clamped, units dead) and sits on a flat loss at
a high value, which is a rate far too high. Comparing training and test curves adds
two more: a test loss that turns back up while the training loss still falls is overfitting
(regularise, or keep the best epoch), and curves still falling at the end mean the run stopped
too early. The thresholds below are deliberately coarse: they name the picture a person would
see in ``cnnlab plot``, on per-epoch averages, not subtle statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

# Relative thresholds on per-epoch averages; see the module docstring.
DIVERGE_RISE = 1.5  # final training loss above this many times its minimum
PLATEAU_DROP = 0.05  # training loss fell by less than this fraction of its first value
PLATEAU_ACCURACY_GAIN = 5.0  # and training accuracy rose by less than this many points
STALLED_DROP = 0.25  # a loss that flattened after falling less than this fraction stalled
OSCILLATION_RISE_SHARE = 0.3  # rises are at least this share of the loss's total movement
OSCILLATION_RISE_COUNT = 0.3  # and happen on at least this fraction of epochs
OVERFIT_TEST_RISE = 0.10  # test loss above its minimum by this fraction
OVERFIT_ACCURACY_DROP = 2.0  # or test accuracy below its best by this many points
IMPROVING_LOSS_SLOPE = 0.02  # training loss still falls by this fraction per epoch at the end
IMPROVING_ACCURACY_SLOPE = 0.25  # or test accuracy still rises by this many points per epoch
HUGE_LR_FACTOR = 100.0  # a rate this many times the optimizer's default is huge
HUGE_LR = 1.0  # ... and, the optimizer unknown, a rate no first-order method trains at
DECAYED_LOSS_FALL = 0.05  # training loss still fell this fraction in the epoch before lr halved
DECAYED_TRAIN_TOP1 = 80.0  # ... and the training set ends this far from fitted (top-1 %)


@dataclass
class Finding:
    """One thing the curves show.

    Attributes:
        kind: ``diverging``, ``saturated``, ``skipped``, ``oscillating``, ``plateau``,
            ``stalled``, ``decayed_early``, ``overfitting``, ``still_improving``, ``healthy`` or
            ``too_short``.
        message: what it means and what to do, one sentence.
        evidence: the numbers the finding rests on.
    """

    kind: str
    message: str
    evidence: str

    @property
    def is_problem(self) -> bool:
        return self.kind in (
            "diverging",
            "saturated",
            "skipped",
            "oscillating",
            "plateau",
            "stalled",
            "decayed_early",
            "overfitting",
        )


@dataclass
class Diagnosis:
    """Everything the curves of one run show, in words and as data."""

    findings: list[Finding] = field(default_factory=list)
    label: str = ""

    @property
    def kinds(self) -> list[str]:
        return [finding.kind for finding in self.findings]

    @property
    def text(self) -> str:
        head = f"diagnosis of {self.label}:" if self.label else "diagnosis:"
        lines = [
            f"  - {f.kind.replace('_', ' ')}: {f.message} ({f.evidence})" for f in self.findings
        ]
        return "\n".join([head, *lines])

    def to_dict(self) -> dict:
        return {
            "run": self.label,
            "findings": [
                {"kind": f.kind, "message": f.message, "evidence": f.evidence}
                for f in self.findings
            ],
        }


def diagnose_run(run_dir: str | Path) -> Diagnosis:
    """Diagnose the run in ``run_dir`` from its ``metrics.csv`` (and the optimizer named in its
    ``config.yaml``, which says what a huge rate is); see :func:`diagnose`."""
    from cnnlab.viz.curves import read_run

    history = read_run(run_dir)
    diagnosis = diagnose(history.rows, optimizer=_run_optimizer(history.path.parent))
    diagnosis.label = history.label
    return diagnosis


def _run_optimizer(run_dir: Path) -> str | None:
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    optimizer = config.get("optimizer") if isinstance(config, dict) else None
    return optimizer if isinstance(optimizer, str) else None


def huge_lr(optimizer: str | None) -> float:
    """The rate from which a flat loss means saturation rather than a rate too low:
    ``HUGE_LR_FACTOR`` times the optimizer's default rate (``HUGE_LR`` if it is unknown)."""
    if optimizer is None:
        return HUGE_LR
    from cnnlab.errors import CnnlabError
    from cnnlab.optim import optimizer_entry

    try:
        default = optimizer_entry(optimizer).defaults.get("lr")
    except CnnlabError:
        return HUGE_LR
    return HUGE_LR_FACTOR * default if default else HUGE_LR


def diagnose(rows: list[dict[str, float]], *, optimizer: str | None = None) -> Diagnosis:
    """Say what per-epoch metrics rows (the columns of ``metrics.csv``) show.

    Epochs whose every step was skipped (``--on-nonfinite skip``) are named and left out of
    the rest. Divergence, saturation, a plateau from the start and oscillation are about the
    learning rate and are checked first; divergence and saturation rule out the rest.
    Overfitting and "still improving" are about the run's length and exclude each other; when
    nothing is wrong the run is called healthy. ``optimizer`` (its name) sets what a huge rate
    is (see :func:`huge_lr`).
    """
    skipped = _skipped(rows)
    if skipped is None:
        return _diagnose_trained(rows, optimizer)
    trained = [row for row in rows if math.isfinite(row.get("train_loss", math.nan))]
    rest = _diagnose_trained(trained, optimizer).findings if trained else []
    return Diagnosis([skipped, *[f for f in rest if f.kind != "too_short"]])


def _skipped(rows: list[dict[str, float]]) -> Finding | None:
    """Epochs with skipped steps; those with no trained step at all have no training loss."""
    partly = [row for row in rows if row.get("skipped_steps", 0) > 0]
    if not partly:
        return None
    empty = [row for row in partly if not math.isfinite(row.get("train_loss", math.nan))]
    steps = int(sum(row["skipped_steps"] for row in partly))
    lr = rows[-1].get("lr")
    lower = f" (e.g. --lr {lr / 10:g})" if lr else ""
    if empty:
        epochs = ", ".join(str(_epoch(empty, i)) for i in range(len(empty)))
        what = f"every step of epoch(s) {epochs} was skipped, so they trained nothing"
    else:
        what = "some steps were skipped"
    return Finding(
        "skipped",
        f"{what}: their loss was not finite (--on-nonfinite skip); the learning rate is too "
        f"high, lower it{lower} or clip the gradient norm (--clip 1.0)",
        f"{steps} step(s) skipped in {len(partly)} epoch(s)",
    )


def _diagnose_trained(rows: list[dict[str, float]], optimizer: str | None) -> Diagnosis:
    train_loss = [row.get("train_loss", math.nan) for row in rows]
    lr = rows[-1].get("lr") if rows else None
    if any(not math.isfinite(v) for v in train_loss) or any(
        not math.isfinite(row.get("test_loss", 0.0)) for row in rows
    ):
        first_bad = next(
            i
            for i, row in enumerate(rows)
            if not (
                math.isfinite(row.get("train_loss", math.nan))
                and math.isfinite(row.get("test_loss", 0.0))
            )
        )
        return Diagnosis([_diverging(f"loss non-finite from epoch {_epoch(rows, first_bad)}", lr)])
    if len(rows) < 2:
        return Diagnosis(
            [
                Finding(
                    "too_short",
                    "one epoch is too few to read the curves; train for more epochs",
                    f"{len(rows)} epoch(s)",
                )
            ]
        )
    saturated = _saturated(rows, train_loss, huge_lr(optimizer))
    if saturated is not None:
        return Diagnosis([saturated])
    findings: list[Finding] = []
    low = min(train_loss)
    if train_loss[-1] > DIVERGE_RISE * low and train_loss[-1] > train_loss[0] * 0.9:
        evidence = (
            f"training loss rose from a minimum of {low:.4g} at epoch "
            f"{_epoch(rows, train_loss.index(low))} to {train_loss[-1]:.4g}"
        )
        return Diagnosis([_diverging(evidence, lr)])
    plateau = _plateau(rows, train_loss)
    if plateau is not None:
        findings.append(plateau)
    oscillation = _oscillation(train_loss)
    if oscillation is not None:
        findings.append(oscillation)
    overfit = _overfitting(rows, train_loss)
    if overfit is not None:
        findings.append(overfit)
    elif plateau is None:
        improving = _still_improving(rows, train_loss)
        if improving is not None:
            findings.append(improving)
    if not findings:
        if train_loss[-1] >= (1 - PLATEAU_DROP) * train_loss[0]:
            findings.append(_flat(rows, train_loss))
        elif train_loss[-1] > (1 - STALLED_DROP) * train_loss[0]:
            findings.append(_stalled(rows, train_loss))
        else:
            findings.append(_decayed_early(rows, train_loss) or _healthy(rows, train_loss))
    return Diagnosis(findings)


def _epoch(rows: list[dict[str, float]], index: int) -> int:
    return int(rows[index].get("epoch", index + 1))


def _diverging(evidence: str, lr: float | None) -> Finding:
    lower = f" (e.g. --lr {lr / 10:g})" if lr else ""
    return Finding(
        "diverging",
        f"the loss is exploding: the learning rate is too high; lower it{lower}, clip the "
        "gradient norm (--clip 1.0) or add warm-up",
        evidence,
    )


def _saturated(
    rows: list[dict[str, float]], train_loss: list[float], huge: float
) -> Finding | None:
    """A loss that never fell below its first value, at a huge rate: the first steps threw
    the network into saturation (an RBF output clamped, ReLUs dead, a softmax at 0/1), where
    the gradient vanishes and the loss stays put at a high value."""
    rate = max(row.get("lr", 0.0) for row in rows)
    if rate < huge or min(train_loss) < (1 - PLATEAU_DROP) * train_loss[0]:
        return None
    return Finding(
        "saturated",
        "the loss has not fallen from its first value although the learning rate is huge: "
        "the first steps saturated the network (its outputs clamp or its units died), so the "
        f"rate is far too high, not too low; lower it (e.g. --lr {huge / HUGE_LR_FACTOR:g}) or "
        "find one with `cnnlab lr-find`",
        f"training loss {train_loss[0]:.4g} -> {train_loss[-1]:.4g} in {len(rows)} epochs at "
        f"lr {rate:g}; {huge:g} or more is huge for this optimizer",
    )


def _plateau(rows: list[dict[str, float]], train_loss: list[float]) -> Finding | None:
    drop = (train_loss[0] - min(train_loss)) / abs(train_loss[0]) if train_loss[0] else 0.0
    accuracy = [row["train_top1"] for row in rows if "train_top1" in row]
    gain = max(accuracy) - accuracy[0] if accuracy else 0.0
    if len(rows) < 3 or drop >= PLATEAU_DROP or gain >= PLATEAU_ACCURACY_GAIN:
        return None
    return _flat(rows, train_loss, drop, gain)


def _flat(
    rows: list[dict[str, float]],
    train_loss: list[float],
    drop: float | None = None,
    gain: float | None = None,
) -> Finding:
    if drop is None:
        drop = (train_loss[0] - train_loss[-1]) / abs(train_loss[0]) if train_loss[0] else 0.0
    if gain is None:
        accuracy = [row.get("train_top1", 0.0) for row in rows]
        gain = accuracy[-1] - accuracy[0]
    return Finding(
        "plateau",
        "the loss has barely moved since the start: the learning rate is probably too low "
        "(raise it ~10x, or find one with `cnnlab lr-find`); check the data and labels too",
        f"training loss fell {100 * drop:.1f}% in {len(rows)} epochs, training accuracy "
        f"+{gain:.1f} points",
    )


def _stalled(rows: list[dict[str, float]], train_loss: list[float]) -> Finding:
    """A loss that fell a little, then flattened: often a schedule that decayed the rate to
    nothing before the network learned much (a deep plain net at a modest rate, say)."""
    rates = [row["lr"] for row in rows if "lr" in row]
    schedule = f", lr {rates[0]:.3g} -> {rates[-1]:.3g}" if rates else ""
    return Finding(
        "stalled",
        "the loss fell only a little and has flattened: the network learned little; raise the "
        "learning rate (`cnnlab lr-find`), train more epochs or decay the rate later",
        f"training loss {train_loss[0]:.4g} -> {train_loss[-1]:.4g} "
        f"({100 * (1 - train_loss[-1] / train_loss[0]):.1f}% lower){schedule}",
    )


def _oscillation(train_loss: list[float]) -> Finding | None:
    steps = [b - a for a, b in zip(train_loss, train_loss[1:], strict=False)]
    rises = [s for s in steps if s > 0]
    movement = sum(abs(s) for s in steps)
    if len(steps) < 2 or not movement:
        return None
    rise_share = sum(rises) / movement
    if rise_share < OSCILLATION_RISE_SHARE or len(rises) < OSCILLATION_RISE_COUNT * len(steps):
        return None
    return Finding(
        "oscillating",
        "the training loss zig-zags from epoch to epoch: the learning rate is on the high "
        "side; lower it (2-10x), use a decaying schedule, or a larger batch",
        f"the loss rose in {len(rises)} of {len(steps)} epochs; rises are "
        f"{100 * rise_share:.0f}% of its movement",
    )


def _overfitting(rows: list[dict[str, float]], train_loss: list[float]) -> Finding | None:
    test_loss = [row["test_loss"] for row in rows]
    best = test_loss.index(min(test_loss))
    if best >= len(rows) - 1 or train_loss[-1] >= train_loss[best]:
        return None  # test loss still at its minimum, or training stopped improving too
    loss_rise = (test_loss[-1] - test_loss[best]) / abs(test_loss[best]) if test_loss[best] else 0
    accuracy = [row.get("test_top1") for row in rows]
    accuracy_drop = 0.0
    if None not in accuracy:
        accuracy_drop = max(accuracy) - accuracy[-1]
    if loss_rise < OVERFIT_TEST_RISE and accuracy_drop < OVERFIT_ACCURACY_DROP:
        return None
    gap = ""
    if all("train_top1" in row and "test_top1" in row for row in (rows[best], rows[-1])):
        gap_then = rows[best]["train_top1"] - rows[best]["test_top1"]
        gap_now = rows[-1]["train_top1"] - rows[-1]["test_top1"]
        gap = f"; train-test accuracy gap {gap_then:.1f} -> {gap_now:.1f} points"
    return Finding(
        "overfitting",
        f"the test loss is lowest at epoch {_epoch(rows, best)} and rises since while the "
        "training loss keeps falling: regularise (weight decay, augmentation, dropout), stop "
        "earlier, or use best.pt",
        f"test loss {test_loss[best]:.4g} -> {test_loss[-1]:.4g} (+{100 * loss_rise:.0f}%){gap}",
    )


def _tail_slopes(rows: list[dict[str, float]], train_loss: list[float]) -> tuple[float, float]:
    """Relative fall per epoch of the training loss, and the test accuracy's rise per epoch,
    over the last third of the run (at least two epochs)."""
    window = max(2, len(rows) // 3)
    start = len(rows) - window
    epochs = len(rows) - 1 - start
    loss_fall = (train_loss[start] - train_loss[-1]) / abs(train_loss[start] or 1.0) / epochs
    accuracy = [row.get("test_top1") for row in rows[start:]]
    accuracy_rise = (accuracy[-1] - accuracy[0]) / epochs if None not in accuracy else 0.0
    return loss_fall, accuracy_rise


def _still_improving(rows: list[dict[str, float]], train_loss: list[float]) -> Finding | None:
    loss_fall, accuracy_rise = _tail_slopes(rows, train_loss)
    test_loss = [row["test_loss"] for row in rows]
    test_falling = test_loss[-1] <= min(test_loss[:-1])
    if not test_falling or (
        loss_fall < IMPROVING_LOSS_SLOPE and accuracy_rise < IMPROVING_ACCURACY_SLOPE
    ):
        return None
    return Finding(
        "still_improving",
        "the curves are still going down at the end: train longer "
        "(`cnnlab resume RUN_DIR --epochs N`)",
        f"over the last epochs the training loss fell {100 * loss_fall:.1f}% per epoch and "
        f"test accuracy rose {accuracy_rise:.2f} points per epoch; test loss at its lowest",
    )


def _decayed_early(rows: list[dict[str, float]], train_loss: list[float]) -> Finding | None:
    """A loss that flattened because the schedule cut the rate while the network was still
    learning fast, not because it converged: a rate too low at the start, so the learning
    began late (LeNet-5 at lr 1e-4 ends at 65% where lr 1e-3 reaches 98%)."""
    rates = [row.get("lr") for row in rows]
    fitted = rows[-1].get("train_top1", 0.0) >= DECAYED_TRAIN_TOP1
    if fitted or any(rate is None for rate in rates) or len(rows) < 3:
        return None
    peak = rates.index(max(rates))
    cut = next((i for i in range(peak + 1, len(rates)) if rates[i] <= rates[peak] / 2), None)
    if cut is None or cut < 2 or not train_loss[cut - 2] > 0:
        return None
    fall = (train_loss[cut - 2] - train_loss[cut - 1]) / train_loss[cut - 2]
    if fall < DECAYED_LOSS_FALL:
        return None
    accuracy = (
        f"; test top-1 {rows[-1]['test_top1']:.2f}% at the end" if "test_top1" in rows[-1] else ""
    )
    return Finding(
        "decayed_early",
        "the loss was still falling fast when the schedule cut the learning rate, and "
        "flattened after: the run stopped learning because the rate became small, not because "
        "it converged; raise the learning rate (`cnnlab lr-find`) or decay it later",
        f"training loss fell {100 * fall:.1f}% in epoch {_epoch(rows, cut - 1)}, just before "
        f"lr {rates[cut - 1]:.3g} -> {rates[cut]:.3g}{accuracy}",
    )


def _healthy(rows: list[dict[str, float]], train_loss: list[float]) -> Finding:
    loss_fall, _ = _tail_slopes(rows, train_loss)
    last = rows[-1]
    accuracy = ""
    if "test_top1" in last:
        accuracy = f", test top-1 {last['test_top1']:.2f}%"
    return Finding(
        "healthy",
        "the loss fell and has flattened, with no sign of overfitting: the run has converged "
        "at this learning rate (a lower rate or a decay step may gain a little more)",
        f"training loss {train_loss[0]:.4g} -> {train_loss[-1]:.4g}, last epochs "
        f"{100 * loss_fall:.1f}% per epoch{accuracy}",
    )
