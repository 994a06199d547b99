"""The Canziani-style chart: accuracy vs MACs with bubble area = parameters."""

import numpy as np
import pytest
from matplotlib.image import imread
from synthetic_runs import history, write_run

from cnnlab.errors import CnnlabError
from cnnlab.viz.compare import (
    compare_figure,
    compare_points,
    read_results_csv,
    torchvision_accuracy,
)
from cnnlab.viz.inputs import save_figure

# torchvision's model table, https://pytorch.org/vision/stable/models.html (IMAGENET1K_V1
# weights): top-1 %, top-5 %, parameters, GFLOPS (torchvision counts multiply-adds as one).
TORCHVISION_TABLE = {
    "alexnet": (56.522, 79.066, 61_100_840, 0.71),
    "googlenet": (69.778, 89.53, 6_624_904, 1.50),
    "resnet18": (69.758, 89.078, 11_689_512, 1.81),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_TABLE))
def test_shipped_imagenet_figures_are_torchvisions(name):
    top1, top5, _, _ = TORCHVISION_TABLE[name]
    accuracy = torchvision_accuracy(name)
    assert (accuracy.top1, accuracy.top5) == (top1, top5)
    assert "IMAGENET1K_V1" in accuracy.source and accuracy.dataset == "ImageNet-1K val"


def test_models_without_published_figures_have_none():
    assert torchvision_accuracy("resnet56") is None  # CIFAR model, not in torchvision
    assert torchvision_accuracy("lenet5") is None


@pytest.fixture(scope="module")
def imagenet_points():
    return compare_points(sorted(TORCHVISION_TABLE))


def test_cost_matches_torchvisions_table(imagenet_points):
    for point in imagenet_points:
        top1, top5, params, gflops = TORCHVISION_TABLE[point.name]
        assert point.params == params  # googlenet: auxiliary classifiers not counted
        assert point.macs / 1e9 == pytest.approx(gflops, abs=0.005)
        assert (point.top1, point.top5) == (top1, top5)


def test_bubbles_sit_at_macs_and_accuracy_with_area_proportional_to_parameters(imagenet_points):
    figure = compare_figure(imagenet_points)
    axis = figure.axes[0]
    (bubbles,) = [c for c in axis.collections if len(c.get_offsets())]
    offsets = np.asarray(bubbles.get_offsets())
    np.testing.assert_allclose(offsets[:, 0], [p.macs for p in imagenet_points])
    np.testing.assert_allclose(offsets[:, 1], [p.top1 for p in imagenet_points])
    sizes = bubbles.get_sizes()
    params = np.array([p.params for p in imagenet_points])
    np.testing.assert_allclose(sizes / sizes.max(), params / params.max())
    assert axis.get_xscale() == "log"
    assert "MACs" in axis.get_xlabel() and "top-1" in axis.get_ylabel()
    labels = {text.get_text() for text in axis.texts}
    assert set(TORCHVISION_TABLE) < labels
    assert any("meta['_metrics']['ImageNet-1K']" in label for label in labels)  # the source


def test_results_csv_and_runs_give_the_accuracy(tmp_path):
    csv_path = tmp_path / "cifar.csv"
    csv_path.write_text("model,top1,top5\nresnet20,91.25,99.7\nresnet56,93.03,\n")
    run = write_run(tmp_path / "lenet-run", "overfitting")
    points = compare_points(["resnet20", "resnet56"], results=csv_path, runs=[run])
    by_name = {p.name: p for p in points}
    assert by_name["resnet20"].top1 == 91.25 and by_name["resnet56"].top5 is None
    best = max(history("overfitting"), key=lambda row: row["test_top1"])
    assert by_name["lenet-run"].top1 == best["test_top1"]
    assert by_name["lenet-run"].top5 == best["test_top5"]
    assert by_name["lenet-run"].input_size == (1, 32, 32)
    # ResNet-20 (He et al. 2016, Table 6): 0.27M parameters; resnet56 0.85M
    assert by_name["resnet20"].params == pytest.approx(0.27e6, rel=0.02)
    assert by_name["resnet56"].params == pytest.approx(0.85e6, rel=0.02)
    assert by_name["resnet56"].macs > 2.5 * by_name["resnet20"].macs


def test_the_picture_depends_on_the_results(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("model,top1\nresnet20,91.0\nresnet56,93.0\n")
    second.write_text("model,top1\nresnet20,85.0\nresnet56,93.0\n")
    images = [
        imread(
            save_figure(
                compare_figure(compare_points(["resnet20", "resnet56"], results=f)),
                tmp_path / f"{f.stem}.png",
            )
        )
        for f in (first, second)
    ]
    assert images[0].shape[:2] == (650, 1100)
    assert images[0].std() > 0.05
    assert not np.array_equal(images[0], images[1])


def test_missing_accuracy_and_bad_files_are_explained(tmp_path):
    with pytest.raises(CnnlabError, match="no accuracy for resnet56.*--results"):
        compare_points(["resnet56"])
    with pytest.raises(CnnlabError, match="unknown model 'resnet57'"):
        compare_points(["resnet57"])
    bad = tmp_path / "bad.csv"
    bad.write_text("name,accuracy\nresnet20,91\n")
    with pytest.raises(CnnlabError, match="columns model,top1"):
        read_results_csv(bad)
    bad.write_text("model,top1\nresnet20,ninety\n")
    with pytest.raises(CnnlabError, match="line 2"):
        read_results_csv(bad)
    with pytest.raises(CnnlabError, match="no results file"):
        read_results_csv(tmp_path / "absent.csv")
