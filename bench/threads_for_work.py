"""Benchmark: full-batch linear fits on one thread and on all of them, by the work of a pass, side by side.

On a features folder (e.g. a sweep's cache entry), fits ``LayerProbes`` with default settings on growing
prefixes of train, in turn on one intra-op thread and on every CPU the process may use (``--repeats``
rounds, fastest counts), and prints per prefix the multiply-adds of a pass (rows x layers x dim x probes x
classes), both times, their ratio, and the thread count :func:`s3prl_mi_probe.common.threads.threads_for_work`
chooses (:func:`~s3prl_mi_probe.common.threads.threads_worth`; its ``MULTIPLY_ADDS_PER_THREAD`` is set from
this measurement).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/threads_for_work.py /tmp/demo/sweep/cache/hubert_local*
"""

import argparse
import contextlib
import time

import numpy as np
import torch

from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.common.threads import threads_worth, use_cpu_share
from s3prl_mi_probe.features.folder import FeaturesFolder
from s3prl_mi_probe.probe import train as probe_train
from s3prl_mi_probe.probe.source import RowSource
from s3prl_mi_probe.probe.train import DEFAULT_L2_GRID, LayerProbes


def fit_seconds(train, dev, classes, threads):
    """Wall time of one default fit on ``threads`` intra-op threads (the work-sized cut switched off)."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    LayerProbes(classes=classes, progress=False).fit(train, dev=dev)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="a features folder with train and dev splits")
    parser.add_argument("--prefixes", type=int, nargs="+", default=[60, 234, 933, 1866, 3732])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    every = use_cpu_share()
    folder = FeaturesFolder(args.folder)
    train, dev = RowSource.from_folder(folder, "train"), RowSource.from_folder(folder, "dev")
    classes = np.unique(train.labels)
    probe_train.threads_for_work = lambda work: contextlib.nullcontext()  # measure both counts as set
    rows = []
    for size in (size for size in args.prefixes if size <= train.num_rows):
        prefix = train.subset(np.arange(size))
        fit_seconds(prefix, dev, classes, every)  # warm-up
        seconds = {1: float("inf"), every: float("inf")}
        for _ in range(args.repeats):
            for threads in seconds:
                seconds[threads] = min(seconds[threads], fit_seconds(prefix, dev, classes, threads))
        work = size * train.num_layers * train.dim * len(DEFAULT_L2_GRID) * classes.size
        rows.append(
            {
                "rows": size,
                "M multiply-adds/pass": work / 1e6,
                "1 thread s": seconds[1],
                f"{every} threads s": seconds[every],
                "1 thread / all": seconds[1] / seconds[every],
                "chosen": threads_worth(work, every),
            }
        )
    print(format_table(rows, list(rows[0]), float_digits=3))


if __name__ == "__main__":
    main()
