"""One torchrun process of the DDP test: trains (each rank's 64 images in four micro-batches of
16), then saves this rank's final weights."""

import os
import sys

import torch

from cnnlab.training import train

if __name__ == "__main__":
    out = sys.argv[1]
    result = train(
        model="lenet5",
        data="digits",
        epochs=1,
        batch_size=128,
        micro_batch=16,
        lr=0.01,
        amp=False,
        out=os.path.join(out, "run"),
    )
    torch.save(result.model.state_dict(), os.path.join(out, f"rank{os.environ['RANK']}.pt"))
