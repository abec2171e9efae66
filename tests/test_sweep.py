"""The sweep and compare commands end to end, and extraction sharded over torchrun processes."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.corpus.tones import write_tone_corpus
from s3prl_mi_probe.features.cache import LayerCache
from s3prl_mi_probe.report.rows import SWEEP_COLUMNS, read_sweep_csv


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


def test_compare_two_sweeps(tmp_path, two_upstream_sweep, tone_manifest):
    second = tmp_path / "word_sweep"
    assert main(sweep_command(tone_manifest, second, "fbank", task="word")) == 0
    assert main(["compare", str(two_upstream_sweep), str(second), "--out", str(tmp_path / "cmp")]) == 0
    report = (tmp_path / "cmp" / "compare.md").read_text()
    assert "hubert_local:tiny_hubert" in report and "fbank" in report
    assert (tmp_path / "cmp" / "compare.csv").is_file() and list((tmp_path / "cmp" / "plots").glob("*.png"))


def test_module_entry_point_and_dev_carving(tmp_path):
    # A manifest without a dev split: one is carved from train, by speaker.
    no_dev = write_tone_corpus(tmp_path / "corpus", num_utterances=20, splits=("train", "train", "train", "test"))
    result = subprocess.run(
        [sys.executable, "-m", "s3prl_mi_probe", *sweep_command(no_dev, tmp_path / "out", "fbank")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((tmp_path / "out" / "sweep.json").read_text())["provenance"]
    assert provenance["dev_carved_from_train"] and provenance["segments"]["dev"] > 0


def test_nothing_left_after_filtering_is_a_clear_error(tmp_path, tone_manifest, capsys):
    message = main(sweep_command(tone_manifest, tmp_path / "out", "fbank", extra=["--min-count", "100000"]))
    assert "no usable segments" in message or "class" in message
    assert not (tmp_path / "out" / "sweep.csv").exists()


def test_torchrun_shards_extraction_into_the_same_cache(tmp_path, tone_manifest, tiny_hubert, two_upstream_sweep):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "s3prl_mi_probe", *sweep_command(tone_manifest, tmp_path / "out", f"hubert_local={tiny_hubert}"),
        "--batch-size", "8",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    [sharded] = [LayerCache(root) for root in (tmp_path / "out" / "cache").iterdir()]
    journals = sorted(path.name for path in sharded.root.glob("done-rank*.txt"))
    assert journals == ["done-rank0.txt", "done-rank1.txt"]
    [single] = [LayerCache(root) for root in (two_upstream_sweep / "cache").iterdir() if root.name == sharded.root.name]
    # torchrun runs each worker with one intra-op thread (OMP_NUM_THREADS=1): float sums may differ
    # from a multi-threaded run in the last bits, nothing more.
    for k in range(3):
        np.testing.assert_allclose(np.asarray(sharded.layer(k)), np.asarray(single.layer(k)), rtol=1e-4, atol=1e-5)
    rows = read_sweep_csv(tmp_path / "out" / "sweep.csv")
    assert {row["layer"] for row in rows} == {0, 1, 2}
