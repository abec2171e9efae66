"""``s3prl-mi-probe demo``: the offline default job, end to end through s3prl's own runner.

Writes a tone corpus and a randomly initialised tiny HuBERT, probes every layer of ``fbank`` and
of that HuBERT on the phone and word tasks with ``-d mi_probe``, and reports the test metrics at
each layer's best dev step as tables (``OUT/report.md``).
"""

import json
from pathlib import Path

from tqdm import tqdm

from s3prl_mi_probe.atomic import write_text_atomic
from s3prl_mi_probe.corpus.tones import write_tone_corpus
from s3prl_mi_probe.report.table import format_table
from s3prl_mi_probe.s3prl_run import run_downstream, short_run_overrides

REPORT_COLUMNS = ("upstream", "layer", "mi_bits", "h_y_bits", "ce_bits", "accuracy", "margin_median")


def run_demo(out, num_utterances=60, steps=120):
    """Run the demo into ``out``; returns the report's text."""
    from s3prl_mi_probe.random_upstreams import write_random_hubert

    out = Path(out)
    manifest = write_tone_corpus(out / "corpus", num_utterances=num_utterances)
    (out / "upstreams").mkdir(parents=True, exist_ok=True)
    hubert = write_random_hubert(out / "upstreams" / "random_hubert.pt")
    upstreams = {"fbank": ["-u", "fbank"], "random_hubert": ["-u", "hubert_local", "-k", str(hubert)]}
    jobs = [(task, name) for task in ("phone", "word") for name in upstreams]
    sections = ["# s3prl-mi-probe demo", "", f"Corpus: {manifest} (tone corpus, {num_utterances} utterances)."]
    rows_by_task = {}
    for task, name in tqdm(jobs, desc="demo runs"):
        expdir = out / "runs" / f"{name}_{task}"
        result = run_downstream(
            "-m", "train", *upstreams[name], "-d", "mi_probe", "-p", str(expdir),
            "-o", short_run_overrides(manifest, steps=steps, eval_step=steps // 4), task=task,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"s3prl's runner failed for {name} / {task}:\n{result.stderr[-4000:]}")
        summary = json.loads((expdir / "summary.json").read_text())
        rows_by_task.setdefault(task, []).extend(
            {"upstream": name, "layer": entry["layer"], **entry["test"]} for entry in summary["layers"]
        )
    for task, rows in rows_by_task.items():
        sections += ["", f"## {task} task: test split, each layer at its best dev step", "", "```"]
        sections += [format_table(rows, REPORT_COLUMNS), "```"]
    report = "\n".join(sections) + "\n"
    write_text_atomic(out / "report.md", report)
    return report

