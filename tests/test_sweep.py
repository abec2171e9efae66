"""The sweep and compare commands end to end, and extraction sharded over torchrun processes."""

import csv
import json
import math
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.features.cache import LayerCache
from s3prl_mi_probe.features.folder import FeaturesFolder
from s3prl_mi_probe.metrics.columns import SWEEP_COLUMNS
from s3prl_mi_probe.report.rows import read_sweep_csv
from s3prl_mi_probe.sweep import FINISHED_ROWS_FOLDER
from tests.support.tones import write_tone_corpus


def sweep_command(manifest, out, *upstreams, task="phone", extra=()):
    specs = [item for spec in upstreams for item in ("--upstream", spec)]
    return ["sweep", *specs, "--manifest", str(manifest), "--task", task, "--out", str(out), "--min-count", "2", *extra]


@pytest.fixture(scope="module")
def two_upstream_sweep(tmp_path_factory, tone_manifest, tiny_hubert):
    out = tmp_path_factory.mktemp("sweep")
    assert main(sweep_command(tone_manifest, out, "fbank", f"hubert_local={tiny_hubert}")) == 0
    return out


def test_sweep_writes_rows_for_every_upstream_layer_and_split(two_upstream_sweep):
    with open(two_upstream_sweep / "sweep.csv") as stream:
        assert tuple(next(csv.reader(stream))) == SWEEP_COLUMNS
    rows = read_sweep_csv(two_upstream_sweep / "sweep.csv")
    keys = {(row["upstream"], row["layer"], row["split"]) for row in rows}
    expected = {("fbank", 0)} | {("hubert_local:tiny_hubert", layer) for layer in range(3)}
    assert keys == {(upstream, layer, split) for upstream, layer in expected for split in ("dev", "test")}
    assert all(row["task"] == "phone" and row["probe"] == "linear" for row in rows)
    fbank_test = next(row for row in rows if row["upstream"] == "fbank" and row["split"] == "test")
    assert fbank_test["mi_bits"] > 0.8 * fbank_test["h_y_bits"]
    for name in ("mi_bits.png", "accuracy.png", "margin.png"):
        assert (two_upstream_sweep / "plots" / name).stat().st_size > 10_000
    assert list((two_upstream_sweep / "tb").rglob("events.out.tfevents.*"))
    provenance = json.loads((two_upstream_sweep / "sweep.json").read_text())["provenance"]
    assert len(provenance["manifest_sha256"]) == 64 and provenance["seed"] == 0
    assert [u["label"] for u in provenance["upstreams"]] == ["fbank", "hubert_local:tiny_hubert"]
    assert provenance["upstreams"][1]["checkpoint_sha256"] and provenance["versions"]["s3prl"] == "0.4.18"


def test_probe_re_probes_a_finished_sweep_from_its_cache(two_upstream_sweep, tmp_path):
    [cache] = [root for root in (two_upstream_sweep / "cache").iterdir() if root.name.startswith("fbank-")]
    folder = FeaturesFolder(cache)
    assert list(folder.columns) == ["split", "label", "group", "speaker", "word_type"]
    assert list(folder.columns["label"].values) == sorted(folder.meta["classes"])
    assert main(["probe", str(cache), "--out", str(tmp_path), "--probe", "linear,mlp1", "--mlp-width", "16"]) == 0
    probed = read_sweep_csv(tmp_path / "sweep.csv")
    swept = [row for row in read_sweep_csv(two_upstream_sweep / "sweep.csv") if row["upstream"] == "fbank"]
    linear = [row for row in probed if row["probe"] == "linear"]
    assert [(row["layer"], row["split"]) for row in linear] == [(row["layer"], row["split"]) for row in swept]
    for again, first in zip(linear, swept):
        assert again["mi_bits"] == pytest.approx(first["mi_bits"], abs=1e-6)
    assert {(row["upstream"], row["task"], row["probe"]) for row in probed} == {
        ("fbank", "phone", "linear"),
        ("fbank", "phone", "mlp1"),
    }


def test_compare_two_sweeps(tmp_path, two_upstream_sweep, tone_manifest):
    second = tmp_path / "word_sweep"
    assert main(sweep_command(tone_manifest, second, "fbank", task="word")) == 0
    assert main(["compare", str(two_upstream_sweep), str(second), "--out", str(tmp_path / "cmp")]) == 0
    report = (tmp_path / "cmp" / "compare.md").read_text()
    assert "hubert_local:tiny_hubert" in report and "fbank" in report
    assert (tmp_path / "cmp" / "compare.csv").is_file() and list((tmp_path / "cmp" / "plots").glob("*.png"))


def test_a_sweep_interrupted_after_an_upstreams_probes_resumes_after_them(
    tmp_path, two_upstream_sweep, tone_manifest, tiny_hubert, capsys
):
    command = sweep_command(tone_manifest, tmp_path / "out", "fbank", f"hubert_local={tiny_hubert}")
    process = subprocess.Popen(
        [sys.executable, "-m", "s3prl_mi_probe", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    finished = tmp_path / "out" / "cache" / "probe_rows"
    deadline = time.monotonic() + 600
    while not list(finished.glob("fbank-*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    [fbank_rows] = finished.glob("*.json")
    stamp = fbank_rows.stat().st_mtime_ns
    assert not (tmp_path / "out" / "sweep.csv").exists()

    assert main(command) == 0
    reused = [line for line in capsys.readouterr().out.splitlines() if "probe rows reused" in line]
    assert len(reused) == 1 and reused[0].startswith("[fbank]")
    assert fbank_rows.stat().st_mtime_ns == stamp and len(list(finished.glob("*.json"))) == 2
    assert (tmp_path / "out" / "sweep.csv").read_text() == (two_upstream_sweep / "sweep.csv").read_text()

    # Changed probe settings do not reuse the rows of other settings.
    assert main([*command, "--max-train-segments", "30"]) == 0
    assert "probe rows reused" not in capsys.readouterr().out
    assert {row["num_train_segments"] for row in read_sweep_csv(tmp_path / "out" / "sweep.csv")} == {30}


def test_a_manifest_without_dev_gets_one_carved_from_train(tmp_path):
    # A manifest without a dev split: one is carved from train, by speaker.
    no_dev = write_tone_corpus(tmp_path / "corpus", num_utterances=20, splits=("train", "train", "train", "test"))
    assert main(sweep_command(no_dev, tmp_path / "out", "fbank")) == 0
    provenance = json.loads((tmp_path / "out" / "sweep.json").read_text())["provenance"]
    assert provenance["dev_carved_from_train"] and provenance["segments"]["dev"] > 0


def test_nothing_left_after_filtering_is_a_clear_error(tmp_path, tone_manifest, capsys):
    message = main(sweep_command(tone_manifest, tmp_path / "out", "fbank", extra=["--min-count", "100000"]))
    assert "no usable segments" in message or "class" in message
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_torchrun_shards_extraction_into_the_same_cache(
    tmp_path, tone_manifest, tiny_hubert, two_upstream_sweep, torchrun_cli
):
    result = torchrun_cli(
        *sweep_command(tone_manifest, tmp_path / "out", f"hubert_local={tiny_hubert}"), "--batch-size", "8"
    )
    assert result.returncode == 0, result.stderr[-4000:]
    [sharded] = [
        LayerCache(root) for root in (tmp_path / "out" / "cache").iterdir() if root.name != FINISHED_ROWS_FOLDER
    ]
    journals = sorted(path.name for path in sharded.root.glob("done-rank*.txt"))
    assert journals == ["done-rank0.txt", "done-rank1.txt"]
    [single] = [LayerCache(root) for root in (two_upstream_sweep / "cache").iterdir() if root.name == sharded.root.name]
    # torchrun runs each worker with one intra-op thread (OMP_NUM_THREADS=1): float sums may differ
    # from a multi-threaded run in the last bits, nothing more.
    for k in range(3):
        np.testing.assert_allclose(np.asarray(sharded.layer(k)), np.asarray(single.layer(k)), rtol=1e-4, atol=1e-5)
    rows = read_sweep_csv(tmp_path / "out" / "sweep.csv")
    assert {row["layer"] for row in rows} == {0, 1, 2}
    # The two processes shared the layers for training: the rows are those of one process.
    alone = [row for row in read_sweep_csv(two_upstream_sweep / "sweep.csv") if row["upstream"] != "fbank"]
    assert [(row["layer"], row["split"]) for row in rows] == [(row["layer"], row["split"]) for row in alone]
    assert all(abs(shared["mi_bits"] - one["mi_bits"]) < 0.005 for shared, one in zip(rows, alone))


def test_sweep_analyses_on_cached_features(tmp_path, tone_manifest):
    extra = [
        "--probe",
        "linear,mlp1",
        "--mlp-width",
        "32",
        "--control",
        "segment",
        "--seeds",
        "2",
        "--mdl",
        "--hard-margin",
    ]
    assert main(sweep_command(tone_manifest, tmp_path, "fbank", extra=extra)) == 0
    rows = read_sweep_csv(tmp_path / "sweep.csv")
    assert {row["probe"] for row in rows} == {"linear", "mlp1"}
    task = build_task(tone_manifest, TaskOptions(task="phone", min_count=2))
    chance = task.label_counts("test").max() / task.label_counts("test").sum()
    for row in (row for row in rows if row["split"] == "test"):
        # The control labels are permuted across segments: no probe can do better than the majority class.
        assert abs(row["control_accuracy"] - chance) < 0.1 and row["control_mi_bits"] < 0.1
        assert row["selectivity"] == pytest.approx(row["accuracy"] - row["control_accuracy"])
        assert row["selectivity"] > 0.5
        assert row["num_seeds"] == 2 and row["mi_bits_seed_std"] >= 0
        assert row["compression"] > 1.5 and row["mdl_bits"] > 0
        assert row["hard_margin"] > 0 or math.isnan(row["hard_margin"])
        assert row["mi_bits_ci_low"] <= row["mi_bits"] <= row["mi_bits_ci_high"]


def test_sweep_draws_linear_and_finetune_curves_together(tmp_path, tone_manifest, tiny_hubert):
    extra = ["--probe", "linear", "--probe", "finetune", "--finetune-layers", "0,2", "--control", "speaker"]
    assert main(sweep_command(tone_manifest, tmp_path, f"hubert_local={tiny_hubert}", extra=extra)) == 0
    rows = read_sweep_csv(tmp_path / "sweep.csv")
    curves = {(row["probe"], row["layer"]) for row in rows if row["split"] == "test"}
    assert curves == {("linear", 0), ("linear", 1), ("linear", 2), ("finetune", 0), ("finetune", 2)}
    for row in rows:
        assert row["selectivity"] == pytest.approx(row["accuracy"] - row["control_accuracy"])
    assert (tmp_path / "plots" / "mi_bits.png").stat().st_size > 10_000


def test_a_refused_control_key_fails_before_any_upstream_is_loaded(tmp_path, tone_manifest):
    message = main(sweep_command(tone_manifest, tmp_path, "fbank", task="word", extra=["--control", "word_type"]))
    assert "coarsening" in message and not (tmp_path / "cache").exists()


def test_finetune_on_an_upstream_without_a_layer_stack_fails_before_any_work(tmp_path, tone_manifest, tiny_hubert):
    message = main(
        sweep_command(
            tone_manifest,
            tmp_path,
            f"hubert_local={tiny_hubert}",
            "fbank",
            "mfcc",
            extra=["--probe", "linear,finetune"],
        )
    )
    assert "fbank: cannot fine-tune" in message and "mfcc: cannot fine-tune" in message
    assert "hubert_local" not in message and not (tmp_path / "cache").exists()


def test_a_speaker_control_is_scored_on_held_out_speakers_seen_in_train_only(tmp_path, capsys):
    # dev speakers a, b and test speaker c occur in train; test speaker x does not.
    speakers = ("a", "b", "c", "a", "x", "b", "c", "a", "b", "c")
    manifest = write_tone_corpus(tmp_path / "corpus", num_utterances=20, speakers=speakers)
    assert main(sweep_command(manifest, tmp_path / "out", "fbank", extra=["--control", "speaker"])) == 0
    task = build_task(manifest, TaskOptions(task="phone", min_count=2))
    unseen = sum(len(item.labels) for item in task.splits["test"] if item.utterance.speaker == "x")
    provenance = json.loads((tmp_path / "out" / "sweep.json").read_text())["provenance"]
    assert provenance["control"] == {"key": "speaker", "unscored_segments": {"train": 0, "dev": 0, "test": unseen}}
    captured = capsys.readouterr()
    assert f"0 dev and {unseen} test segment(s) not scored" in captured.out + captured.err
    for row in read_sweep_csv(tmp_path / "out" / "sweep.csv"):
        assert 0 <= row["control_accuracy"] <= 1 and math.isfinite(row["control_mi_bits"])
        assert row["selectivity"] == pytest.approx(row["accuracy"] - row["control_accuracy"])


def test_outputs_take_the_umask_and_a_rerun_leaves_no_stale_runs(tmp_path, tone_manifest):
    out = tmp_path / "out"
    previous = os.umask(0o002)  # a group-shared server
    try:
        assert main(sweep_command(tone_manifest, out, "fbank", "mfcc")) == 0
        assert sorted(path.name for path in (out / "tb").iterdir()) == ["fbank", "mfcc"]
        assert main(sweep_command(tone_manifest, out, "fbank")) == 0
    finally:
        os.umask(previous)
    assert sorted(path.name for path in (out / "tb").iterdir()) == ["fbank"]
    assert {row["upstream"] for row in read_sweep_csv(out / "sweep.csv")} == {"fbank"}
    written = [out / "sweep.csv", out / "sweep.json", *(out / "plots").iterdir(), *(out / "tb").rglob("events*")]
    assert {stat.S_IMODE(path.stat().st_mode) for path in written} == {0o664}
    assert {stat.S_IMODE(path.stat().st_mode) for path in (out, out / "plots", out / "tb", out / "tb" / "fbank")} == {
        0o775
    }
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]
