"""Benchmark: what ``s3prl-mi-probe benchmark`` costs, measured side by side in one run.

1. The whole benchmark (synthetic-v1's tasks, fbank + a tiny random HuBERT) at two corpus sizes, each
   in a fresh process: wall time and peak resident memory; the cost ratio against the size ratio.
2. Extraction of one random HuBERT-Base-sized model (12 layers, 768 dims) for the three tasks of one
   corpus: one shared forward (``extract_tasks``) against one extraction per task; audio seconds per
   wall second and cache rows per second, the figures docs/benchmark.md scales to LibriSpeech.

The machine is shared: the load average is printed beside the numbers.
Usage: ``python bench/benchmark_cost.py [--sizes 48,96] [--out bench_out/benchmark_cost]``.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from s3prl_mi_probe.benchmark.protocol import load_protocol
from s3prl_mi_probe.common.provenance import file_sha256
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus
from s3prl_mi_probe.corpus.task import build_task
from s3prl_mi_probe.demo.random_upstreams import write_random_hubert
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec

BASE = {"num_layers": 12, "dim": 768, "ffn_dim": 3072, "heads": 12, "conv_dim": 512}


def benchmark_in_process(protocol_file, out, upstreams):
    """Wall seconds and peak RSS (MB) of one benchmark command in a fresh process."""
    specs = [item for spec in upstreams for item in ("--upstream", spec)]
    command = [sys.executable, "-m", "s3prl_mi_probe", "benchmark", "--protocol", str(protocol_file), *specs]
    script = (
        "import resource, subprocess, sys, time; start = time.perf_counter(); "
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
        "print(code, time.perf_counter() - start, peak)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *command, "--out", str(out)], capture_output=True, text=True, check=True
    )
    code, seconds, peak = result.stdout.split()
    if code != "0":
        raise RuntimeError(f"benchmark failed ({code}): {' '.join(command)}")
    return float(seconds), float(peak)


def whole_benchmark(out, sizes, tiny):
    rows = []
    for size in sizes:
        text = load_protocol("synthetic-v1").text.replace("utterances: 96", f"utterances: {size}")
        protocol_file = out / f"synthetic-{size}.yaml"
        protocol_file.write_text(text)
        folder = out / f"benchmark-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        seconds, peak = benchmark_in_process(protocol_file, folder, ["fbank", f"hubert_local={tiny}"])
        cells = sum(1 for _ in (folder / "runs").glob("*/*/cell.json"))
        rows.append({"utterances": size, "cells": cells, "wall_s": seconds, "peak_rss_mb": peak})
    return rows


def extraction(out, manifest):
    """Shared against separate extraction of a Base-sized random HuBERT for the three tasks."""
    checkpoint = write_random_hubert(out / "base_hubert.pt", **BASE)
    spec = UpstreamSpec("hubert_local", checkpoint)
    protocol = load_protocol("synthetic-v1")
    tasks = [build_task(manifest, options) for _, options in protocol.tasks.values()]
    audio_seconds = sum(u.num_samples / u.sample_rate for u in _utterances(tasks[1]))
    rows_total = sum(int(t.label_counts(s).sum()) for t in tasks for s in t.splits)
    sha = file_sha256(manifest)
    rows = []
    for mode in ("shared", "separate"):
        cache = out / f"cache-{mode}"
        shutil.rmtree(cache, ignore_errors=True)
        extractor = Extractor(spec, batch_size=8)
        start = time.perf_counter()
        if mode == "shared":
            extractor.extract_tasks(tasks, sha, cache, progress=False)
        else:
            for task in tasks:
                extractor.extract(task, sha, cache, progress=False)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "extraction": mode,
                "wall_s": seconds,
                "audio_s_per_s": audio_seconds / seconds,
                "rows_per_s": rows_total / seconds,
                "cache_mb": sum(p.stat().st_size for p in cache.rglob("*.npy")) / 2**20,
            }
        )
    return rows, audio_seconds, rows_total


def _utterances(task):
    return [utterance for split in task.splits.values() for utterance in split]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="48,96", help="corpus sizes (utterances) of part 1")
    parser.add_argument("--out", type=Path, default=Path("bench_out/benchmark_cost"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from s3prl_mi_probe.runner import activate

    activate()
    tiny = write_random_hubert(args.out / "tiny_hubert.pt")
    load = os.getloadavg()
    sizes = [int(size) for size in args.sizes.split(",")]
    whole = whole_benchmark(args.out, sizes, tiny)
    print(
        f"1. benchmark, synthetic-v1 tasks, fbank + tiny HuBERT (load average {load[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    print(format_table(whole, ["utterances", "cells", "wall_s", "peak_rss_mb"], float_digits=1))
    print(
        f"   {sizes[-1] / sizes[0]:.1f}x the utterances: {whole[-1]['wall_s'] / whole[0]['wall_s']:.2f}x the time, "
        f"{whole[-1]['peak_rss_mb'] / whole[0]['peak_rss_mb']:.2f}x the peak memory"
    )
    manifest = synthesize_corpus(args.out / "corpus", utterances=sizes[-1], seed=0)
    rows, audio_seconds, rows_total = extraction(args.out, manifest)
    load = os.getloadavg()
    print(
        f"\n2. extraction, random HuBERT-Base-sized (13 x 768), word + phone + frame_phone of {sizes[-1]} utterances "
        f"({audio_seconds:.0f} s of audio, {rows_total} cache rows; load average {load[0]:.1f})"
    )
    print(format_table(rows, ["extraction", "wall_s", "audio_s_per_s", "rows_per_s", "cache_mb"], float_digits=1))
    print(f"   shared forward: {rows[1]['wall_s'] / rows[0]['wall_s']:.2f}x faster than one extraction per task")
    print(f"   peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
