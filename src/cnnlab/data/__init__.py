"""Datasets by name, batched tensor augmentation and deterministic, resumable loaders.

``load_dataset(name)`` returns a ``DatasetSplits``; ``make_loader(split, dataset, ...)``
returns a loader whose ``epoch(epoch, start_step)`` yields normalised batches on the device.
"""

from cnnlab.data.datasets import default_data_dir, list_datasets, load_dataset
from cnnlab.data.loaders import BatchLoader, FolderLoader, make_loader
from cnnlab.data.splits import DatasetSplits, FolderImages, TensorImages

__all__ = [
    "BatchLoader",
    "DatasetSplits",
    "FolderLoader",
    "FolderImages",
    "TensorImages",
    "default_data_dir",
    "list_datasets",
    "load_dataset",
    "make_loader",
]
