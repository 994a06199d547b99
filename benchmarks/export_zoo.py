"""Export every model of the zoo to ONNX and check each file against PyTorch.

For each registered model (or those matching PATTERN): build it with its initial weights,
export it with ``cnnlab.export.export_model`` (dynamo exporter, one file), run the file in
onnxruntime on a random batch and compare with PyTorch's output on the same batch. Prints,
per model, the largest difference relative to the largest output (the reference is PyTorch,
in the same run), the export time and the file size; then how many passed the 1e-4 limit.
Each file is deleted after its check. Example (about 20 minutes on 2 CPU cores)::

    python benchmarks/export_zoo.py --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.export import TOLERANCE, export_model
from cnnlab.machine import machine_summary
from cnnlab.models import list_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pattern", nargs="?", help="shell wildcard over model names")
    parser.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    parser.add_argument("--dynamic-batch", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=120)
    console.print(f"machine: {machine_summary(torch.device('cpu'))}; format {args.format}")
    table = Table(title=f"{args.format} export of the zoo, checked against PyTorch")
    for column in ("model", "input", "max|diff| / max|out|", "export s", "MB", "result"):
        table.add_column(column, justify="left" if column in ("model", "result") else "right")
    passed, failed = 0, []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnlab_export_") as folder:
        for name in list_models(args.pattern):
            out = Path(folder) / f"{name}.{args.format}"
            try:
                result = export_model(name, args.format, out, dynamic_batch=args.dynamic_batch)
            except CnnlabError as error:
                failed.append(name)
                table.add_row(name, "", "", "", "", f"FAILED: {str(error)[:70]}")
                console.print(f"{name}: FAILED: {error}", highlight=False, soft_wrap=True)
                continue
            finally:
                for written in Path(folder).glob(f"{name}.*"):
                    written.unlink()
            passed += 1
            size = "x".join(map(str, result.input_size))
            row = (
                name,
                size,
                f"{result.relative_difference:.2e}",
                f"{result.seconds:.1f}",
                f"{result.bytes / 1e6:.1f}",
                "ok",
            )
            table.add_row(*row)
            console.print("  ".join(row), highlight=False)
    console.print(table)
    total = passed + len(failed)
    console.print(
        f"{passed}/{total} models exported and within {TOLERANCE:g} of PyTorch in "
        f"{time.perf_counter() - started:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )


if __name__ == "__main__":
    main()
