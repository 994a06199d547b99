"""One torchrun process of the DDP tests: trains (each rank's 64 images in four micro-batches
of 16), then saves this rank's final weights. ``stopped`` stops the run after step 5 of its
single epoch (as Ctrl-C would); ``resumed`` continues it, as ``torchrun ... cnnlab resume``;
``speedrun`` trains a small speedrun net whose whitening bias freezes after its first epoch."""

import os
import sys

import torch

from cnnlab.training import TrainingInterrupted, engine, resume, train

if __name__ == "__main__":
    out, mode = sys.argv[1], sys.argv[2]
    options = dict(
        model="lenet5", data="digits", epochs=1, batch_size=128, micro_batch=16, lr=0.01,
        amp=False, log_every=1, out=os.path.join(out, "whole" if mode == "whole" else "parts"),
    )  # fmt: skip
    if mode == "speedrun":
        options.update(
            model="speedrun_cifar_net", recipe="speedrun_cifar", epochs=2, micro_batch=None,
            model_kwargs={"widths": [8, 16, 16]}, whitening_bias_epochs=1,
        )  # fmt: skip
        del options["lr"]
    if mode == "stopped":
        take_step = engine.Trainer._train_step

        def stop_after_step_5(self, *args):
            take_step(self, *args)
            self._stop_requested = self.global_step + 1 >= 5

        engine.Trainer._train_step = stop_after_step_5
        try:
            train(**options)
        except TrainingInterrupted:
            sys.exit(0)
        sys.exit("the run was not stopped")
    result = resume(options["out"]) if mode == "resumed" else train(**options)
    torch.save(result.model.state_dict(), os.path.join(out, f"{mode}-rank{os.environ['RANK']}.pt"))
