"""`cnnlab train MODEL --data D` without --recipe: the paper's recipe, said in one line."""

from __future__ import annotations


def test_train_names_the_papers_recipe_it_chose(cnnlab, tmp_path):
    finished = cnnlab(
        "train", "alexnet_paper", "--data", f"folder:{tmp_path / 'no-imagenet'}", cwd=tmp_path
    )
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert "recipe alexnet2012 (Krizhevsky et al. 2012) for alexnet_paper" in finished.stdout
    assert len(finished.stderr.strip().splitlines()) == 1  # the missing folder, in one line


def test_data_imagenet_points_to_an_image_folder(cnnlab, tmp_path):
    finished = cnnlab("train", "resnet50", "--data", "imagenet", cwd=tmp_path)
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    (line,) = finished.stderr.strip().splitlines()
    assert "--data folder:PATH" in line
    assert "recipe resnet2016_imagenet" in finished.stdout
