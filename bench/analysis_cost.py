"""Benchmark: what each analysis adds to the probe stage, side by side in one run, default settings.

On the features folders of a finished sweep (its ``cache/`` entries, e.g. the demo corpus's fbank and
tiny HuBERT), runs the probe stage (:func:`s3prl_mi_probe.probing.driver.run_probe`, as
``s3prl-mi-probe probe`` does) once per variant and prints each variant's seconds, summed over the
folders, and its ratio to the plain linear probe:

- ``linear``: the plain linear probe (the reference, ratio 1);
- ``+seeds 2``, ``+control``, ``+mdl``, ``+hard margin``: the linear probe with one analysis on;
- ``all analyses``: seeds 2, control, MDL and hard margin together (goal: at most 3x);
- one row per MLP kind (``--mlp``), plain, priced separately.

Variants run in turn, ``--repeats`` rounds of them, in one process, and each reports its fastest round,
so that load from other processes touches all variants alike.

    .venv/bin/s3prl-mi-probe synth --out /tmp/demo/corpus --utterances 240
    .venv/bin/s3prl-mi-probe sweep --upstream fbank --upstream hubert_local=HUBERT.pt \\
        --manifest /tmp/demo/corpus/manifest.tsv --task phone --min-count 5 --out /tmp/demo/sweep
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/analysis_cost.py /tmp/demo/sweep/cache/*
"""

import argparse
import contextlib
import io
import tempfile
import time

from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.probing.driver import run_probe
from s3prl_mi_probe.probing.settings import ProbeSettings


def variants(control, mlp_kinds):
    """``{name: ProbeSettings}`` of every priced variant, the plain linear probe first."""
    analyses = {
        "+seeds 2": {"seeds": 2},
        "+control": {"control": control},
        "+mdl": {"mdl": True},
        "+hard margin": {"hard_margin": True},
    }
    everything = {name: value for options in analyses.values() for name, value in options.items()}
    return {
        "linear": ProbeSettings(),
        **{name: ProbeSettings(**options) for name, options in analyses.items()},
        "all analyses": ProbeSettings(**everything),
        **{kind: ProbeSettings(probes=(kind,)) for kind in mlp_kinds},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="features folders (e.g. a sweep's cache entries)")
    parser.add_argument("--control", default="word_type", help="control key (default: word_type)")
    parser.add_argument("--mlp", default="mlp1", help="comma-separated MLP kinds to price ('' for none)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the variants; the fastest counts")
    args = parser.parse_args()
    priced = variants(args.control, [kind for kind in args.mlp.split(",") if kind])
    seconds = {name: float("inf") for name in priced}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):
            for name, settings in priced.items():
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # the per-folder result tables
                    for folder in args.folders:
                        run_probe(folder, scratch, settings, progress=False)
                seconds[name] = min(seconds[name], time.perf_counter() - start)
    plain = seconds["linear"]
    rows = [{"variant": name, "seconds": value, "x linear": value / plain} for name, value in seconds.items()]
    print(format_table(rows, ["variant", "seconds", "x linear"], float_digits=2))


if __name__ == "__main__":
    main()
