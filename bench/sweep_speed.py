"""Benchmark: the sweep against the two ways of doing without it, measured side by side in one run.

1. ``sweep`` (all layers from one extraction pass, batched probes on cached features) against
   s3prl's runner run once per layer (``-d mi_probe -l k``) until that layer's dev CE reaches the
   sweep's dev CE for the layer (+0.01 bit), on the synthetic espeak-ng corpus (>= 200 utterances,
   whole voices held out) with the tiny random HuBERT and ``fbank``. A runner that has not got there
   after RUNNER_MAX_SECONDS is stopped, and the ratio is then a lower bound. Goal: >= 10x.
2. ``run_sweep`` against a bare upstream forward over the same audio (same batching, nothing kept;
   both in this process, both including the model load),
   with a randomly initialised HuBERT-Base-sized model (12 layers, 768 dims) so that the forward is
   a real cost. Goal: <= 2x on CPU.

Usage: ``python bench/sweep_speed.py [--utterances 200] [--out bench_out]``.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.audio import load_audio
from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.demo.random_upstreams import write_random_hubert
from s3prl_mi_probe.features.extract import layout_rows, plan_chunks
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from s3prl_mi_probe.runner.shipped_configs import config_path
from s3prl_mi_probe.sweep import SweepSettings, run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests.support

TOLERANCE_BITS = 0.01
RUNNER_MAX_STEPS = 20000
RUNNER_MAX_SECONDS = 300
RUNNER_EVAL_STEP = 25


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def run_sweep_cli(manifest, out, *specs):
    upstreams = [item for spec in specs for item in ("--upstream", spec)]
    command = [
        sys.executable,
        "-m",
        "s3prl_mi_probe",
        "sweep",
        *upstreams,
        "--manifest",
        str(manifest),
        "--task",
        "phone",
        "--out",
        str(out),
        "--min-count",
        "2",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((out / "sweep.json").read_text())["rows"]


def runner_time_to_target(manifest, expdir, upstream_args, layer, target_ce):
    """Seconds until the runner's dev CE for ``layer`` reaches ``target_ce`` (or its cap), and the CE."""
    from tests.support.launch import short_run_overrides

    overrides = short_run_overrides(
        manifest,
        steps=RUNNER_MAX_STEPS,
        eval_step=RUNNER_EVAL_STEP,
        runner__eval_dataloaders="['dev']",
        optimizer__lr=1e-2,
    )
    command = [
        sys.executable,
        "-m",
        "s3prl.run_downstream",
        "-m",
        "train",
        *upstream_args,
        "-d",
        "mi_probe",
        "-l",
        str(layer),
        "-p",
        str(expdir),
        "-c",
        str(config_path("phone")),
        "-o",
        overrides,
        "--device",
        "cpu",
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics, best = expdir / "metrics.jsonl", float("inf")
    while process.poll() is None and time.perf_counter() - start < RUNNER_MAX_SECONDS:
        if metrics.exists():
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            best = min([best] + [row["ce_bits"] for row in rows if row["split"] == "dev"])
            if best <= target_ce:
                process.kill()
                break
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    process.kill()
    process.wait()
    return elapsed, best


def bare_forward_seconds(manifest, spec, batch_size=8):
    """Load the upstream and run every utterance once (the sweep's chunks), outputs dropped."""
    task = build_task(manifest, TaskOptions(task="phone", min_count=2))
    items, _, _ = layout_rows(task)
    start = time.perf_counter()
    upstream = spec.load("cpu")
    with torch.no_grad():
        for chunk in plan_chunks(items, batch_size):
            upstream([torch.from_numpy(load_audio(items[index][0].utterance.audio)) for index in chunk])
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args()
    out = args.out.resolve()
    for stale in ("corpus", "sweep_small", "sweep_base", "runner"):  # a cache left from an earlier run would skew times
        shutil.rmtree(out / stale, ignore_errors=True)
    manifest = synthesize_corpus(out / "corpus", utterances=args.utterances, seed=0)
    tiny = write_random_hubert(out / "tiny_hubert.pt")
    base = write_random_hubert(out / "base_hubert.pt", num_layers=12, dim=768, ffn_dim=3072, heads=12, conv_dim=512)
    print(f"corpus: {args.utterances} utterances ({manifest}); CPU threads: {torch.get_num_threads()}")

    # 1. sweep vs the runner once per layer, to the same dev CE.
    sweep_seconds, rows = timed(run_sweep_cli, manifest, out / "sweep_small", "fbank", f"hubert_local={tiny}")
    upstream_args = {"fbank": ["-u", "fbank"], "hubert_local:tiny_hubert": ["-u", "hubert_local", "-k", str(tiny)]}
    table, runner_total = [], 0.0
    for row in (row for row in rows if row["split"] == "dev"):
        target = row["ce_bits"] + TOLERANCE_BITS
        expdir = out / "runner" / f"{row['upstream'].replace(':', '_')}_l{row['layer']}"
        seconds, reached = runner_time_to_target(manifest, expdir, upstream_args[row["upstream"]], row["layer"], target)
        runner_total += seconds
        table.append(
            {
                "upstream": row["upstream"],
                "layer": row["layer"],
                "sweep_dev_ce": row["ce_bits"],
                "runner_dev_ce": reached,
                "reached": reached <= target,
                "runner_s": seconds,
            }
        )
    print("\n1. sweep vs s3prl runner once per layer (-l k) to the sweep's dev CE + 0.01 bit")
    print(format_table(table, ("upstream", "layer", "sweep_dev_ce", "runner_dev_ce", "reached", "runner_s")))
    bound = "" if all(entry["reached"] for entry in table) else " (a lower bound: some runs hit the time cap)"
    print(f"sweep {sweep_seconds:.1f} s, runner {runner_total:.1f} s: ratio {runner_total / sweep_seconds:.1f}x{bound}")

    # 2. sweep vs a bare forward with a HuBERT-Base-sized random model.
    base_spec = UpstreamSpec.parse(f"hubert_local={base}")
    forward_seconds = bare_forward_seconds(manifest, base_spec)
    options = TaskOptions(task="phone", min_count=2)
    base_sweep_seconds, _ = timed(run_sweep, [base_spec], manifest, options, out / "sweep_base", SweepSettings(), False)
    print("\n2. sweep vs bare upstream forward, random HuBERT-Base size (12 layers, 768 dims)")
    print(
        f"forward {forward_seconds:.1f} s, sweep {base_sweep_seconds:.1f} s: "
        f"ratio {base_sweep_seconds / forward_seconds:.2f}x (goal <= 2x)"
    )


if __name__ == "__main__":
    main()
