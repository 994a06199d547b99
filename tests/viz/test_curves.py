"""Training curves: the plotted lines are the CSV's numbers, styled as the ResNet figures."""

import csv
import math

import numpy as np
import pytest
from matplotlib.image import imread
from synthetic_runs import history, write_metrics

from cnnlab.errors import CnnlabError
from cnnlab.viz.curves import curves_figure, lr_steps, plot_runs, read_run


def _csv_column(path, key):
    with open(path, newline="") as file:
        return [float(row[key]) for row in csv.DictReader(file)]


def _line(axis, label):
    (line,) = [line for line in axis.get_lines() if line.get_label() == label]
    return line


def test_lines_are_the_csv_values_train_dashed_test_solid(tmp_path):
    csv_path = write_metrics(tmp_path / "resnet20", history("healthy"))
    figure = curves_figure([tmp_path / "resnet20"])
    error_axis, loss_axis = figure.axes
    epochs = _csv_column(csv_path, "epoch")
    for key, label, style in [
        ("train_top1", "resnet20 train", "--"),
        ("test_top1", "resnet20 test", "-"),
    ]:
        line = _line(error_axis, label)
        assert line.get_linestyle() == style
        np.testing.assert_allclose(line.get_xdata(), epochs)
        np.testing.assert_allclose(line.get_ydata(), [100 - v for v in _csv_column(csv_path, key)])
    for key, label in [("train_loss", "resnet20 train"), ("test_loss", "resnet20 test")]:
        np.testing.assert_allclose(_line(loss_axis, label).get_ydata(), _csv_column(csv_path, key))
    assert error_axis.get_ylabel() == "top-1 error (%)" and error_axis.get_xlabel() == "epoch"
    assert "loss" in loss_axis.get_ylabel()
    assert error_axis.get_legend() is not None and figure._suptitle.get_text()


def test_several_runs_overlay_one_colour_each(tmp_path):
    runs = [
        write_metrics(tmp_path / "plain20", history("still_improving")).parent,
        write_metrics(tmp_path / "resnet20", history("healthy")).parent,
    ]
    error_axis = curves_figure(runs, metric="error").axes[0]
    colours = {line.get_label(): line.get_color() for line in error_axis.get_lines()}
    assert set(colours) == {"plain20 train", "plain20 test", "resnet20 train", "resnet20 test"}
    assert colours["plain20 train"] == colours["plain20 test"]
    assert colours["plain20 test"] != colours["resnet20 test"]


def test_learning_rate_steps_are_marked_continuous_schedules_are_not(tmp_path):
    # rows 1-5 at 0.1, 6-9 at 0.01, 10-12 at 0.001: the logged rate is the one in force at the
    # end of the epoch, so the steps took effect after epochs 6 and 10
    write_metrics(tmp_path / "steps", history("step_lr"))
    run = read_run(tmp_path / "steps")
    steps = lr_steps(run)
    assert [(epoch, round(old, 6), round(new, 6)) for epoch, old, new in steps] == [
        (6, 0.1, 0.01),
        (10, 0.01, 0.001),
    ]
    axis = curves_figure([run], metric="loss").axes[0]
    vertical = sorted(
        line.get_xdata()[0] for line in axis.get_lines() if line.get_label().startswith("_")
    )
    assert vertical == [6, 10]

    # a plateau schedule logs the rate the epoch used: the change came after the row before
    (tmp_path / "steps" / "config.yaml").write_text("model: resnet20\nschedule: plateau\n")
    assert [epoch for epoch, _, _ in lr_steps(read_run(tmp_path / "steps"))] == [5, 9]

    cosine = history("healthy")
    for row in cosine:
        row["lr"] = 0.05 * (1 + math.cos(math.pi * row["epoch"] / len(cosine)))
    write_metrics(tmp_path / "cosine", cosine)
    assert lr_steps(read_run(tmp_path / "cosine")) == []


def test_png_size_and_content_depend_on_the_data(tmp_path):
    a = write_metrics(tmp_path / "a", history("healthy")).parent
    b = write_metrics(tmp_path / "b", history("overfitting")).parent
    both = imread(plot_runs([a], tmp_path / "a.png"))
    assert both.shape[:2] == (450, 1300)
    error_only = imread(plot_runs([a], tmp_path / "a_error.png", metric="error"))
    assert error_only.shape[:2] == (450, 650)
    other = imread(plot_runs([b], tmp_path / "b.png"))
    assert both.std() > 0.05  # not a blank picture
    assert not np.array_equal(both, other)


def test_a_blow_up_switches_the_loss_axis_to_log_and_leaves_nan_gaps(tmp_path):
    write_metrics(tmp_path / "exploding", history("exploding"))
    axis = curves_figure([tmp_path / "exploding"], metric="loss").axes[0]
    assert axis.get_yscale() == "log"
    assert np.isnan(_line(axis, "exploding train").get_ydata()[-1])


def test_bad_input_is_reported(tmp_path):
    with pytest.raises(CnnlabError, match="no metrics.csv"):
        curves_figure([tmp_path / "missing"])
    write_metrics(tmp_path / "run", history("healthy"))
    with pytest.raises(CnnlabError, match="unknown metric 'accuracy'"):
        curves_figure([tmp_path / "run"], metric="accuracy")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.csv").write_text("epoch,train_loss,test_loss\n")
    with pytest.raises(CnnlabError, match="no epochs yet"):
        curves_figure([tmp_path / "empty"])


def test_a_papers_error_is_a_labelled_horizontal_line_on_the_error_panel(tmp_path, cnnlab):
    run = write_metrics(tmp_path / "resnet20", history("healthy")).parent
    figure = curves_figure([run], references=[("He et al. 2016", 8.75)])
    error_axis, loss_axis = figure.axes
    line = _line(error_axis, "He et al. 2016: 8.75%")
    assert list(line.get_ydata()) == [8.75, 8.75]
    assert "He et al. 2016: 8.75%" not in [line.get_label() for line in loss_axis.get_lines()]
    out = tmp_path / "fig6.png"
    result = cnnlab("plot", str(run), "--reference", "He et al. 2016=8.75", "--out", str(out))
    assert result.returncode == 0 and out.is_file()
    result = cnnlab("plot", str(run), "--reference", "8.75", "--out", str(out))
    assert result.returncode == 2 and "LABEL=ERROR" in result.stderr
