"""Benchmark: probe training on features folders of growing size, peak memory and wall time side by side.

For each size N it writes a features folder (13 layers x 768 dims, float16, Gaussian classes; 80 %
train, 10 % dev, 10 % test), then probes it in a fresh process: ``LayerProbes(...).fit(folder)`` and
the dev and test evaluations, within ``--memory-budget``. Where the float32 features fit
``--in-memory-max``, the same fit also runs on arrays loaded into memory (the in-memory path). Each
run reports peak RSS (the kernel's high-water mark, VmHWM), peak anonymous memory (RssAnon, sampled:
what the process itself holds; the page cache behind file reads is the kernel's), wall time and
train rows per second (rows x epochs / fit time). Then the growth ratios between sizes, and an
extrapolation of a LibriSpeech-scale run from the measured rate. Folders are deleted after use.

Epochs are fixed (``--epochs``, no early stopping) and the polish capped (``--polish-steps``) so that
every size does the same work per row and the bench stays within minutes on a CPU.

    .venv/bin/python bench/scale.py --sizes 25000 100000 400000 --dir /tmp/scale_bench
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from s3prl_mi_probe.features.folder import layer_file, write_rows_tsv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests.support

LIBRISPEECH_SEGMENTS = 4_000_000  # phone tokens of train-clean-100, about
GIB = 1 << 30


def write_gaussian_folder(root, num_rows, num_layers, dim, num_classes, seed=0, chunk_rows=20_000):
    """A features folder of Gaussian classes whose separability rises then falls over the layers (float16)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(num_classes, size=num_rows)
    root.mkdir(parents=True, exist_ok=True)
    for layer in range(num_layers):
        scale = 0.5 + 2.0 * np.sin(np.pi * layer / max(num_layers - 1, 1))
        means = (scale * rng.standard_normal((num_classes, dim)) / np.sqrt(dim) * 4).astype(np.float32)
        array = np.lib.format.open_memmap(layer_file(root, layer), mode="w+", dtype=np.float16, shape=(num_rows, dim))
        for start in range(0, num_rows, chunk_rows):
            rows = slice(start, min(start + chunk_rows, num_rows))
            noise = rng.standard_normal((rows.stop - start, dim), dtype=np.float32)
            array[rows] = means[labels[rows]] + noise
        array.flush()
        del array
    position = np.arange(num_rows) % 10
    splits = np.where(position == 0, "test", np.where(position == 1, "dev", "train"))
    write_rows_tsv(root / "rows.tsv", {"split": splits, "label": [f"c{label}" for label in labels]})
    return root


def child(args):
    """Fit and evaluate in this process; print one JSON line of measurements."""
    from s3prl_mi_probe.common.allocator import release_large_blocks
    from s3prl_mi_probe.features.folder import FeaturesFolder
    from s3prl_mi_probe.probe import train as estimator
    from s3prl_mi_probe.probe.train import LayerProbes
    from tests.support.peak_memory import PeakMemory

    phases = {"epochs_s": 0.0, "polish_s": 0.0}

    def timed(function, phase):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            phases[phase] += time.perf_counter() - start
            return result

        return run

    estimator.train_bank = timed(estimator.train_bank, "epochs_s")  # Adam epochs with their dev evaluations
    estimator.polish_bank = timed(estimator.polish_bank, "polish_s")

    release_large_blocks()  # as the probe and sweep commands do
    start = time.perf_counter()
    folder = FeaturesFolder(args.child)  # checks every value for NaN/inf, as `probe` does
    check_s = time.perf_counter() - start
    options = {
        "l2_grid": tuple(args.l2_grid),
        "max_epochs": args.epochs,
        "patience": args.epochs + 1,
        "polish_steps": args.polish_steps,
        "memory_budget": args.memory_budget if args.mode == "stream" else 64 * GIB,
        "l2_search_rows": None,
        "progress": False,
    }
    with PeakMemory() as memory:
        start = time.perf_counter()
        if args.mode == "memory":
            splits = {
                split: (
                    [np.load(layer.path)[folder.rows_of(split)].astype(np.float32) for layer in folder.layers],
                    folder.columns["label"].codes[folder.rows_of(split)],
                )
                for split in ("train", "dev", "test")
            }
            train, dev, test = splits["train"], splits["dev"], splits["test"]
        else:
            train, dev, test = folder, None, folder
        loaded = time.perf_counter()
        probes = LayerProbes(**options).fit(train, dev=dev)
        fitted = time.perf_counter()
        probes.evaluate(dev if dev is not None else folder, split="dev")
        test_rows = probes.evaluate(test, split="test")
        done = time.perf_counter()
    print(
        json.dumps(
            {
                **memory.report(),
                "check_s": check_s,
                "load_s": loaded - start,
                "fit_s": fitted - loaded,
                **phases,
                "total_s": done - start,
                "train_rows": probes.num_train_segments_,
                "epochs": max(probes.epochs_run_),
                "plan": probes.memory_plan_.describe(),
                "test_mi_bits": [row["mi_bits"] for row in test_rows],
            }
        )
    )


def measure(folder, mode, args):
    command = [sys.executable, __file__, "--child", str(folder), "--mode", mode]
    command += ["--epochs", str(args.epochs), "--polish-steps", str(args.polish_steps)]
    command += ["--memory-budget", str(args.memory_budget), "--l2-grid", *map(str, args.l2_grid)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"child failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gib(value):
    return f"{value / GIB:.2f}"


def add_folder_options(parser, sizes, folder):
    """The options of the Gaussian features folders a bench writes: sizes, layers, width, classes, where."""
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=Path(folder))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_folder_options(parser, [25_000, 100_000, 400_000], "bench_out/scale")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--polish-steps", type=int, default=2)
    parser.add_argument("--l2-grid", type=float, nargs="+", default=[1e-4, 1e-2])
    parser.add_argument("--memory-budget", type=int, default=GIB)
    parser.add_argument("--in-memory-max", type=float, default=4.0, help="GiB of float32 features")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["stream", "memory"], default="stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(
        f"layers={args.layers} dim={args.dim} classes={args.classes} float16 on disk; epochs={args.epochs} "
        f"(fixed), polish steps={args.polish_steps}, l2 grid={args.l2_grid}, "
        f"memory budget {gib(args.memory_budget)} GiB"
    )
    results = []
    for size in args.sizes:
        folder = args.dir / f"n{size}"
        start = time.perf_counter()
        write_gaussian_folder(folder, size, args.layers, args.dim, args.classes)
        print(f"wrote {folder} ({size} rows) in {time.perf_counter() - start:.0f} s", flush=True)
        try:
            row = {"rows": size, "stream": measure(folder, "stream", args)}
            if size * args.layers * args.dim * 4 <= args.in_memory_max * GIB:
                row["memory"] = measure(folder, "memory", args)
        finally:
            shutil.rmtree(folder)
        results.append(row)
        print(json.dumps(row), flush=True)
    print_table(results, args)


def print_table(results, args):
    header = (
        f"{'rows':>8} {'path':>7} {'peak RSS':>9} {'+RSS':>6} {'peak anon':>10} {'+anon':>6} "
        f"{'wall s':>7} {'fit s':>6} {'epoch s':>7} {'rows/s':>7} {'train':>9}"
    )
    print(header + "   (GiB; + is above the process's baseline before loading)")
    for row in results:
        for path in ("stream", "memory"):
            if path not in row:
                continue
            run = row[path]
            rate = run["train_rows"] * run["epochs"] / run["epochs_s"]
            where = "resident" if run["plan"]["train_resident"] else f"blocks of {run['plan']['block_rows']}"
            print(
                f"{row['rows']:>8} {path:>7} {gib(run['peak_hwm']):>9} {gib(run['peak_hwm'] - run['baseline_hwm']):>6} "
                f"{gib(run['peak_anon']):>10} {gib(run['peak_anon'] - run['baseline_anon']):>6} "
                f"{run['total_s']:>7.1f} {run['fit_s']:>6.1f} {run['epochs_s'] / run['epochs']:>7.1f} {rate:>7.0f} "
                f"{where:>9}"
            )
    first, last = results[0]["stream"], results[-1]["stream"]
    growth = results[-1]["rows"] / results[0]["rows"]
    print(
        f"streamed, {growth:.0f}x the rows: peak RSS {gib(first['peak_hwm'])} -> {gib(last['peak_hwm'])} GiB "
        f"({(last['peak_hwm'] - first['peak_hwm']) / GIB:+.2f}), peak anon {gib(first['peak_anon'])} -> "
        f"{gib(last['peak_anon'])} GiB ({(last['peak_anon'] - first['peak_anon']) / GIB:+.2f}); wall time x"
        f"{last['total_s'] / first['total_s']:.1f}, fit time x{last['fit_s'] / first['fit_s']:.1f}"
    )
    for row in results:
        if "memory" in row:
            ratio = row["stream"]["total_s"] / row["memory"]["total_s"]
            gap = max(abs(a - b) for a, b in zip(row["stream"]["test_mi_bits"], row["memory"]["test_mi_bits"]))
            print(
                f"{row['rows']} rows: streamed / in-memory wall time {ratio:.2f}, peak anon "
                f"{gib(row['stream']['peak_anon'])} vs {gib(row['memory']['peak_anon'])} GiB, test bits differ "
                f"by at most {gap:.4f} bit over the layers"
            )
    rate = last["train_rows"] * last["epochs"] / last["epochs_s"]
    per_epoch = LIBRISPEECH_SEGMENTS * 0.8 / rate * len(args.l2_grid)  # seconds per epoch and per L2 candidate
    print(
        f"extrapolated from {rate:.0f} train rows/s per epoch ({len(args.l2_grid)} L2 candidates, dev evaluation "
        f"included): an epoch of {LIBRISPEECH_SEGMENTS * 0.8:.0f} train rows x {args.layers} layers takes "
        f"~{per_epoch * 6 / 3600:.1f} h on this machine with the 6-value grid, ~{per_epoch * 2 / 3600:.1f} h with "
        f"the subsample L2 search (2 values, after a 200,000-row search)"
    )


if __name__ == "__main__":
    main()
