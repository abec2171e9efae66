"""A torchrun worker that runs s3prl's own ``run_downstream`` under DDP on the CPU (gloo).

``torchrun --nproc_per_node=2 ddp_worker.py OUT_DIR RUN_DOWNSTREAM_TRAIN_ARGS...`` trains with
``run_downstream.main()``, then (in the same process group, as ``main()`` does for ``-m evaluate``)
evaluates ``EXPDIR/best-states-dev.ckpt`` on the test split on every rank. Each rank writes
``OUT_DIR/rank<r>.json`` with what the tests check: whether the expert was DDP-wrapped, its
standardiser statistics, the training items its sampler handed out per epoch, and the test items it
read in the evaluation.

s3prl's DDP path is written for GPUs: ``main()`` calls ``torch.cuda.set_device(local_rank)`` and the
Runner wraps trainable models in ``DistributedDataParallel(device_ids=[local_rank])``. On the CPU
there is no device to set and DDP takes no device ids; those two calls are adapted here, nothing else.
"""

import json
import sys
from pathlib import Path

import s3prl.downstream.runner as s3prl_runner
import s3prl.run_downstream as run_downstream
import torch
from torch.nn.parallel import DistributedDataParallel

from s3prl_mi_probe.runner.command_line import complete_run_downstream_arguments


def cpu_ddp(module, device_ids=None, **kwargs):
    return DistributedDataParallel(module, **kwargs)


class RecordingRunner(run_downstream.Runner):
    """s3prl's Runner (as patched by the plugin) that keeps track of itself."""

    built = []

    def __init__(self, args, config):
        super().__init__(args, config)
        RecordingRunner.built.append(self)


def report(trained, evaluated):
    wrapped = trained.downstream.model
    expert = wrapped.module if isinstance(wrapped, DistributedDataParallel) else wrapped
    loader = expert.get_dataloader("train", epoch=0)
    epochs = -(-trained.config["runner"]["total_steps"] // len(loader))
    standardizer = getattr(expert, "standardizer", None)
    evaluating = evaluated.downstream.model
    evaluating = evaluating.module if isinstance(evaluating, DistributedDataParallel) else evaluating
    return {
        "rank": torch.distributed.get_rank(),
        "ddp_wrapped": isinstance(wrapped, DistributedDataParallel),
        "train_segments": [len(item.labels) for item in expert.task.splits["train"]],
        "train_items": [list(expert.get_dataloader("train", epoch=epoch).sampler) for epoch in range(epochs)],
        "standardizer": None
        if standardizer is None
        else {name: buffer.tolist() for name, buffer in standardizer.named_buffers()},
        "segments": {split: sum(len(item.labels) for item in items) for split, items in expert.task.splits.items()},
        "test_utterances": len(expert.task.splits["test"]),
        "test_items": list(evaluating.get_dataloader("test").sampler),
    }


def main():
    out = Path(sys.argv[1])
    s3prl_runner.DDP = cpu_ddp
    torch.cuda.set_device = lambda device: None
    run_downstream.Runner = RecordingRunner
    cpu = ["--backend", "gloo", "--device", "cpu"]
    # The plugin completes run_downstream.py's command line when that is the program; here it is
    # this file, so the same completion is called by hand: torchrun's LOCAL_RANK -> --local_rank.
    sys.argv = ["run_downstream.py", *sys.argv[2:], *cpu]
    complete_run_downstream_arguments(sys.argv)
    run_downstream.main()
    [trained] = RecordingRunner.built
    torch.distributed.barrier()  # rank 0 saves the last checkpoints after the others have finished
    checkpoint = Path(trained.args.expdir) / "best-states-dev.ckpt"
    sys.argv = ["run_downstream.py", "-m", "evaluate", "-e", str(checkpoint), *cpu]
    complete_run_downstream_arguments(sys.argv)
    args, config, _ = run_downstream.get_downstream_args()
    evaluated = RecordingRunner(args, config)
    evaluated.evaluate()
    info = report(trained, evaluated)
    (out / f"rank{info['rank']}.json").write_text(json.dumps(info))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
