"""Rich tables for ``cnnlab datasets``: the names cnnlab knows, and one loaded dataset."""

from __future__ import annotations

from rich.table import Table

from cnnlab.data.datasets import dataset_descriptions, default_data_dir
from cnnlab.data.splits import DatasetSplits, TensorImages


def datasets_table() -> Table:
    """Every dataset name with what it is; the caption gives the default data directory."""
    table = Table(
        title="datasets",
        caption=f"data directory: --data-dir DIR, else $CNNLAB_DATA, else {default_data_dir()}",
    )
    table.add_column("name", style="bold")
    table.add_column("what it is")
    for usage, about in dataset_descriptions().items():
        table.add_row(usage, about)
    return table


def dataset_table(dataset: DatasetSplits) -> Table:
    """What ``load_dataset`` returned: splits, sizes, statistics and where it came from."""

    def split_line(split) -> str:
        where = "in memory (uint8)" if isinstance(split, TensorImages) else f"on disk: {split.root}"
        return f"{len(split):,} images, {where}"

    def numbers(values) -> str:
        return ", ".join(f"{v:.4f}" for v in values)

    classes = ", ".join(dataset.classes[:10]) + (" ..." if len(dataset.classes) > 10 else "")
    table = Table(title=dataset.name, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("source", dataset.source)
    table.add_row("train", split_line(dataset.train))
    table.add_row("test", split_line(dataset.test))
    table.add_row("input size", " x ".join(map(str, dataset.input_size)))
    table.add_row("classes", f"{dataset.num_classes}: {classes}")
    table.add_row("mean", numbers(dataset.mean))
    table.add_row("std", numbers(dataset.std))
    table.add_row("default augment", dataset.augment)
    if dataset.skipped:
        more = f" and {len(dataset.skipped) - 1} more" if len(dataset.skipped) > 1 else ""
        table.add_row("skipped", f"{len(dataset.skipped)} unreadable: {dataset.skipped[0]}{more}")
    return table
