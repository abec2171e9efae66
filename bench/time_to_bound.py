"""Benchmark: time to a converged bound with default settings, idle and beside CPU-bound processes.

For each size N it writes a features folder (``--layers`` x ``--dim`` float16, ``--classes`` Gaussian
classes; 80 % train, 10 % dev, 10 % test, as bench/scale.py), then, each in a fresh process,
``LayerProbes().fit(folder)`` with **default settings** (no fixed epochs) and the test evaluation:

- idle, and beside ``--load-processes`` processes that loop ``torch.tanh(a @ a)`` on 512 x 512
  (a shared machine), and the ratio of the two wall times;
- the epochs run and the passes over train (training + polish) per layer, the train rows x probes
  per second, and the effective GFLOP/s of the training GEMMs (counted as they run) next to this
  machine's own ``torch.mm`` rate on the same shapes, float32 and bfloat16, measured in the same run;
- the peak anonymous memory of the idle fit and evaluation (heap and tensors; the features are
  memory-mapped, so their pages are the kernel's to drop);
- the bound per layer against a long-run reference (no tolerance, patience 20) where N is at most
  ``--reference-max-rows``: the worst shortfall (reference minus default, the default's bound the
  looser) and the largest difference either way (a longer run can also choose, on dev, a probe that
  does worse on test).

    .venv/bin/python bench/time_to_bound.py --sizes 30000 120000 480000 --dir /tmp/ttb
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from scale import add_folder_options, write_gaussian_folder

from tests.support.peak_memory import PeakMemory

LONG_RUN = {"tol_bits": 0.0, "patience": 20, "max_epochs": 300}
LOAD_SIDE = 512


def child(args):
    """Fit and evaluate in this process with ``args.options``; print one JSON line of measurements."""
    import torch

    from s3prl_mi_probe.common.threads import use_cpu_share
    from s3prl_mi_probe.features.folder import FeaturesFolder
    from s3prl_mi_probe.probe import bank_kernels
    from s3prl_mi_probe.probe.train import LayerProbes

    use_cpu_share()
    flops = {"gemm": 0.0}
    logits, gradients = bank_kernels.LinearKernel.logits, bank_kernels.LinearKernel.gradients

    def counted_logits(self, params, features):
        layers, rows, dim = features.shape
        flops["gemm"] += 2.0 * layers * rows * dim * params["weight"][0, 0].numel()
        return logits(self, params, features)

    def counted_gradients(self, params, features, labels, with_losses=False):
        layers, rows, dim = features.shape
        flops["gemm"] += 2.0 * layers * rows * dim * params["weight"][0, 0].numel()  # the Xᵀ·residual GEMM
        return gradients(self, params, features, labels, with_losses)

    bank_kernels.LinearKernel.logits = counted_logits
    bank_kernels.LinearKernel.gradients = counted_gradients
    folder = FeaturesFolder(args.folder)
    with PeakMemory() as memory:
        start = time.perf_counter()
        probes = LayerProbes(progress=False, **json.loads(args.options)).fit(folder)
        fit_s = time.perf_counter() - start
        rows = probes.evaluate(folder, split="test")
    record = {
        "fit_s": fit_s,
        "threads": torch.get_num_threads(),
        "train_rows": probes.num_train_segments_,
        "probes": len(probes.layers_) * len(probes.l2_candidates_[0]),
        "mi_bits": [row["mi_bits"] for row in rows],
        "epochs_run": probes.epochs_run_,
        "train_passes": probes.train_passes_,
        "gflops": flops["gemm"] / 1e9,
        "peak_anon_gb": memory.peak_anon / 1e9,
    }
    print(json.dumps(record))


def gemm_rates(rows, dim, columns, repeats=20):
    """GFLOP/s of ``torch.mm`` ``[rows, dim] @ [dim, columns]`` here, float32 and bfloat16."""
    import torch

    from s3prl_mi_probe.common.threads import use_cpu_share

    use_cpu_share()
    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(rows, dim, dtype=dtype), torch.randn(dim, columns, dtype=dtype)
        torch.mm(a, b)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        rates[str(dtype).split(".")[-1]] = 2 * rows * dim * columns * repeats / (time.perf_counter() - start) / 1e9
    return rates


def run_child(folder, options, env):
    """One child fit: its JSON record and wall time."""
    command = [sys.executable, __file__, "--child", "--folder", str(folder), "--options", json.dumps(options)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"child failed:\n{result.stderr[-3000:]}")
    record = json.loads(result.stdout.strip().splitlines()[-1])
    record["wall_s"] = time.perf_counter() - start
    return record


def under_load(count, function):
    """``function()`` while ``count`` processes loop ``tanh(a @ a)`` on the same CPUs."""
    loop = f"import torch\na = torch.randn({LOAD_SIDE}, {LOAD_SIDE})\nwhile True:\n    a = torch.tanh(a @ a)\n"
    loaders = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]
    try:
        time.sleep(2)
        return function()
    finally:
        for loader in loaders:
            loader.kill()
            loader.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_folder_options(parser, [30_000, 120_000, 480_000], "bench_out/time_to_bound")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--reference-max-rows", type=int, default=30_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the s3prl-mi-probe command sets it
    from s3prl_mi_probe.probe.train import DEFAULT_L2_GRID

    columns = len(DEFAULT_L2_GRID) * args.classes
    rates = {batch: gemm_rates(batch, args.dim, columns) for batch in (256, 1024)}
    print(
        f"features: {args.layers} layers x {args.dim} float16, {args.classes} classes; default settings; "
        f"{args.load_processes} load processes; OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}"
    )
    for batch, rate in rates.items():
        print(
            f"torch.mm [{batch}, {args.dim}] @ [{args.dim}, {columns}]: "
            + ", ".join(f"{dtype} {value:.0f} GFLOP/s" for dtype, value in rate.items())
        )
    header = (
        f"{'rows':>8} {'idle_s':>7} {'load_s':>7} {'load/idle':>9} {'epochs':>14} {'passes':>14} "
        f"{'rows*probes/s':>13} {'GFLOP/s':>7} {'peak_GB':>7} {'shortfall':>9} {'max|dMI|':>8}"
    )
    lines = []
    for size in args.sizes:
        folder = write_gaussian_folder(args.dir / f"n{size}", size, args.layers, args.dim, args.classes)
        idle = run_child(folder, {}, env)
        loaded = under_load(args.load_processes, lambda folder=folder: run_child(folder, {}, env))
        shortfall = deviation = float("nan")
        if size <= args.reference_max_rows:
            reference = run_child(folder, LONG_RUN, env)
            differences = [b - a for a, b in zip(idle["mi_bits"], reference["mi_bits"])]
            shortfall, deviation = max(differences), max(map(abs, differences))
        shutil.rmtree(folder)
        passes = sum(idle["train_passes"]) / len(idle["train_passes"])
        line = (
            f"{size:>8} {idle['wall_s']:>7.1f} {loaded['wall_s']:>7.1f} {loaded['wall_s'] / idle['wall_s']:>9.2f} "
            f"{min(idle['epochs_run']):>6.1f}-{max(idle['epochs_run']):<7.1f} "
            f"{min(idle['train_passes']):>6.1f}-{max(idle['train_passes']):<7.1f} "
            f"{idle['train_rows'] * idle['probes'] * passes / idle['fit_s']:>13.3g} "
            f"{idle['gflops'] / idle['fit_s']:>7.1f} {idle['peak_anon_gb']:>7.2f} {shortfall:>9.4f} {deviation:>8.4f}"
        )
        lines.append(line)
        print(header, *lines, sep="\n", flush=True)
    return None


if __name__ == "__main__":
    main()
