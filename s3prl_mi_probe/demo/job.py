"""``s3prl-mi-probe demo``: the offline default job, end to end, in a few minutes on a CPU.

Synthesizes the demo corpus (espeak-ng voices as speakers, exact alignments, no download), sweeps
every layer of the default upstreams on the phone and word tasks, and writes ``OUT/report.md`` and
its self-contained twin ``OUT/report.html``: side-by-side tables and plots of both tasks, what was
measured on what, and how to read it. The default upstreams need no download: ``fbank``, ``mfcc``,
a randomly initialised HuBERT (a control), and the small APC shipped in ``s3prl_mi_probe/demo/models/``
(pretrained with s3prl's own APC recipe on synthetic speech) next to the same APC randomly initialised. With
``--upstream`` it sweeps those instead (e.g. ``hubert`` and ``wavlm_base_plus``, downloaded by s3prl
where the network allows).
"""

import json
from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.common.table import markdown_table
from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus
from s3prl_mi_probe.corpus.task import TaskOptions, describe_task_default
from s3prl_mi_probe.demo.models import FOLDER as DEMO_MODELS_FOLDER
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from s3prl_mi_probe.report.compare import compare_sweeps
from s3prl_mi_probe.report.findings import pair_finding, ranking_finding
from s3prl_mi_probe.report.html import write_html_report
from s3prl_mi_probe.sweep import SweepSettings, run_sweep

TASKS = ("phone", "word")
# The shipped APC, pretrained, and the same APC randomly initialised: what pretraining put there.
SHIPPED_APC = ("apc_synth.ckpt", "apc_random.ckpt")
TITLE = "# s3prl-mi-probe demo: how many bits of phone and word identity does each layer hold?"
HOW_TO_READ = """## How to read this

- **mi_bits** is a lower bound on the mutual information between a layer and the labels,
  I(Z;Y) >= H(Y) - CE (Barber-Agakov), with CE the cross-entropy in bits of a linear probe on
  held-out (test) segments. It can only under-estimate; H(Y) (dashed line) is the ceiling.
- **Data processing**: the true information cannot grow with depth, yet a linear probe's bound can
  peak mid-network, where the information is most linearly separable.
- **Margin**: when a layer is linearly separable the bound saturates at H(Y); the median geometric
  margin of the probe (standardised features) still tells such layers apart: larger is more separable.
- **Intervals**: [low, high] is the 95 % bootstrap interval over the test segments. Layers or
  upstreams whose intervals overlap are not shown to differ.
- The random HuBERT and the random APC are controls: what a probe finds in an untrained network of
  the same shape. What the learned APC holds beyond its random twin is what pretraining put there.
"""
MODEL_NOTES = """The learned model is tiny and saw only synthetic speech (see `s3prl_mi_probe/demo/models/README.md`):
the demo shows the method, not findings about real self-supervised models. Run
`s3prl-mi-probe demo --upstream hubert --upstream wavlm_base_plus` for those.
"""


def default_upstreams(out):
    """``fbank``, ``mfcc``, a random HuBERT written under ``out``, and the shipped APC pair."""
    from s3prl_mi_probe.demo.random_upstreams import write_random_hubert

    (out / "upstreams").mkdir(parents=True, exist_ok=True)
    hubert = write_random_hubert(out / "upstreams" / "random_hubert.pt", num_layers=4, dim=64)
    present = [spec for spec in _shipped_apc() if spec.checkpoint.is_file()]
    return [UpstreamSpec("fbank"), UpstreamSpec("mfcc"), UpstreamSpec("hubert_local", hubert), *present]


def _shipped_apc():
    return [UpstreamSpec("apc_local", DEMO_MODELS_FOLDER / name) for name in SHIPPED_APC]


def _task_sizes(sweep_dirs):
    """A pipe table of each swept task's class filters, classes and segments per split, from its provenance."""
    rows = []
    for sweep_dir in sweep_dirs:
        provenance = json.loads((sweep_dir / "sweep.json").read_text())["provenance"]
        options, segments = provenance["task"], provenance["segments"]
        rows.append(
            {
                "task": options["task"],
                "min_count": options["min_count"],
                "max_classes": "all" if options["max_classes"] is None else options["max_classes"],
                "fold_stress": "on" if options["fold_stress"] else "off",
                "classes": len(provenance["classes"]),
                **{f"{split} segments": segments[split] for split in ("train", "dev", "test")},
            }
        )
    return markdown_table(rows, list(rows[0]))


def _findings(sweeps):
    """The findings section: per task (``sweeps``: the rows of each task's sweep), the ranking of the upstreams
    and each pretrained model against its twin."""
    lines = [
        "## Findings",
        "",
        "Computed from the numbers below: each upstream at the layer its dev bound ranks first, its test bound "
        "with the 95 % bootstrap interval. A difference counts only where the intervals do not overlap.",
        "",
    ]
    for rows in sweeps:
        task = rows[0]["task"]
        pretrained, random_twin = (spec.label for spec in _shipped_apc())
        sentences = [ranking_finding(rows, task), pair_finding(rows, task, pretrained, random_twin)]
        lines += [f"- {sentence}" for sentence in sentences if sentence]
    return "\n".join(lines) + "\n"


def run_demo(out, upstreams=None, num_utterances=240, seed=0, device="cpu", min_count=5):
    """Run the demo into ``out``; returns the path of its report.

    ``min_count`` is the demo's own class filter for both tasks (its corpus is small); the other class
    filters are the task defaults. The report states the filters of each task.
    """
    out = Path(out)
    settings = SweepSettings(device=device, seed=seed, cache_dir=out / "cache")
    manifest = synthesize_corpus(out / "corpus", utterances=num_utterances, seed=seed)
    upstreams = upstreams or default_upstreams(out)
    sweep_dirs = [out / task for task in TASKS]
    sweeps = [
        run_sweep(upstreams, manifest, TaskOptions(task=task, min_count=min_count, seed=seed), out / task, settings)
        for task in TASKS
    ]
    outputs = compare_sweeps(sweep_dirs, out)
    measured = (
        f"## What was measured\n\nCorpus: synthetic English from espeak-ng ({num_utterances} utterances, seed "
        f"{seed}, `{manifest}`), voices as speakers, whole voices held out for dev and test; word and phone "
        f"intervals from the synthesizer's own events (exact). Class filters per task below: the demo keeps "
        f"classes with at least {min_count} training segments on both tasks, for its small corpus (the task "
        f"defaults are min_count {describe_task_default('min_count')}); the other filters are the task defaults. "
        f"Upstreams: {', '.join(spec.label for spec in upstreams)}. Linear probes on every layer, L2 "
        f"and early stopping chosen on dev, numbers on test. Class counts, dropped segments, versions and "
        f"checksums: `phone/sweep.json`, `word/sweep.json`. Rerunning with the same seed gives the same "
        f"numbers.\n\n{_task_sizes(sweep_dirs)}\n\n{MODEL_NOTES}"
    )
    report = out / "report.md"
    comparison = outputs["markdown"].read_text().split("\n", 1)[1]  # below compare's own title
    write_text_atomic(report, f"{TITLE}\n\n{_findings(sweeps)}{comparison}\n{measured}\n{HOW_TO_READ}")
    write_html_report(report)
    return report
