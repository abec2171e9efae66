"""The command line as a new user meets it: wrong flags, missing files, unreachable weights, Ctrl-C.

Each mistake ends in one line ``s3prl-mi-probe <command>: <what is wrong>; <what to do>``, no
traceback, a non-zero exit code (2: the command line itself, 1: what the work found, 130: Ctrl-C)
and nothing half-written.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from s3prl_mi_probe.common.provenance import file_sha256
from s3prl_mi_probe.corpus.synthetic.tones import write_tone_corpus
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.features.cache import LayerCache
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec


def cli(*args, env=None, timeout=600):
    """``python -m s3prl_mi_probe ARGS`` in a subprocess."""
    command = [sys.executable, "-m", "s3prl_mi_probe", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def our_line(result, exit_code, *expected):
    """The one message line of a failed command, after checking exit code, traceback and stdout."""
    assert result.returncode == exit_code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout == ""
    ours = [line for line in result.stderr.splitlines() if line.startswith("s3prl-mi-probe")]
    assert len(ours) == 1, result.stderr[-3000:]
    assert result.stderr.rstrip().endswith(ours[0])
    for text in expected:
        assert text in ours[0], ours[0]
    return ours[0]


def sweep_args(manifest, out, *upstreams, extra=()):
    specs = [item for spec in upstreams for item in ("--upstream", spec)]
    return ["sweep", *specs, "--manifest", manifest, "--task", "phone", "--out", out, "--min-count", "2", *extra]


def test_a_wrong_flag_is_one_line_pointing_at_help():
    line = our_line(cli("sweep", "--upstreams", "fbank"), 2, "s3prl-mi-probe sweep: ", "--help")
    assert "unrecognized arguments: --upstreams" in line or "required" in line


def test_a_local_upstream_without_its_checkpoint(tmp_path, tone_manifest):
    result = cli(*sweep_args(tone_manifest, tmp_path / "out", "apc_local"))
    our_line(result, 2, "s3prl-mi-probe sweep: argument --upstream:", "apc_local=CKPT_PATH")
    assert not (tmp_path / "out").exists()


def test_a_missing_checkpoint(tmp_path, tone_manifest):
    result = cli(*sweep_args(tone_manifest, tmp_path / "out", f"hubert_local={tmp_path / 'nope.pt'}"))
    our_line(result, 2, "checkpoint of upstream 'hubert_local' not found", "nope.pt")
    assert not (tmp_path / "out").exists()


def test_weights_that_cannot_be_downloaded(tmp_path, tone_manifest):
    # An empty download cache and a proxy that refuses every connection: s3prl's download fails at once.
    offline = {"HOME": str(tmp_path / "home"), "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = cli(*sweep_args(tone_manifest, tmp_path / "out", "hubert"), env=offline)
    our_line(result, 1, "s3prl-mi-probe sweep: upstream 'hubert': s3prl could not download its weights", "network")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_on_a_machine_without_one(tmp_path, tone_manifest):
    result = cli(*sweep_args(tone_manifest, tmp_path / "out", "fbank", extra=["--device", "cuda"]))
    our_line(result, 1, "s3prl-mi-probe sweep: no CUDA device", "add --device cpu")
    assert not (tmp_path / "out").exists()


def test_a_speaker_control_on_speaker_disjoint_splits_is_refused_before_any_work(tmp_path):
    manifest = write_tone_corpus(tmp_path / "corpus", num_utterances=10, speakers=("a", "b", "c", "d", "e"))
    result = cli(*sweep_args(manifest, tmp_path / "out", "fbank", extra=["--control", "speaker"]))
    our_line(result, 1, "control key 'speaker': no dev and no test segment has a speaker that occurs in train")
    assert not (tmp_path / "out").exists()


def test_compare_of_a_missing_folder(tmp_path):
    result = cli("compare", tmp_path / "nope", "--out", tmp_path / "out")
    our_line(result, 2, "s3prl-mi-probe compare: argument DIR: no folder", "nope")
    assert not (tmp_path / "out").exists()


def test_probe_of_a_missing_folder_and_a_bad_count(tmp_path):
    our_line(cli("probe", tmp_path / "nope", "--out", tmp_path / "out"), 2, "argument FEATURES_DIR: no folder")
    line = our_line(cli("probe", tmp_path, "--out", tmp_path / "out", "--max-train-segments", "0"), 2)
    assert "argument --max-train-segments: must be at least 1, got 0" in line
    assert not (tmp_path / "out").exists()


def test_probe_of_a_folder_that_is_not_a_features_folder(tmp_path):
    (tmp_path / "feats").mkdir()
    (tmp_path / "feats" / "rows.tsv").write_text("split\tlabel\ntrain\ta\n")
    result = cli("probe", tmp_path / "feats", "--out", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first, *problems = result.stderr.strip().splitlines()
    assert first.startswith("s3prl-mi-probe probe: features folder") and first.endswith("cannot be probed:")
    assert problems == [
        "  - no layer files (layer_000.npy, layer_001.npy, ...)",
        "  - rows.tsv: split 'test' has no rows",
    ]
    assert not (tmp_path / "out").exists()


def journalled_chunks(cache_dir):
    return sum(len(journal.read_text().split("\n")) - 1 for journal in cache_dir.rglob("done-rank*.txt"))


def test_ctrl_c_during_extraction_ends_in_one_line_and_the_cache_resumes(tmp_path, tone_manifest, tiny_hubert):
    upstream = f"hubert_local={tiny_hubert}"
    # One utterance per chunk, each segment through the upstream alone: an extraction that takes a while.
    args = sweep_args(tone_manifest, tmp_path / "out", upstream, extra=["--batch-size", "1", "--slicing", "audio"])
    command = [sys.executable, "-m", "s3prl_mi_probe", *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while journalled_chunks(tmp_path / "out") < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    our_line(result, 130, "s3prl-mi-probe sweep: interrupted", "rerun the same command to resume")
    [root] = (tmp_path / "out" / "cache").iterdir()
    assert not LayerCache(root).complete and len(LayerCache(root).done_chunks()) >= 2
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["cache"]

    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (tmp_path / "out" / "sweep.csv").is_file() and LayerCache(root).complete
    task = build_task(tone_manifest, TaskOptions(task="phone", min_count=2))
    extractor = Extractor(UpstreamSpec.parse(upstream), slicing="audio", batch_size=1)
    fresh = extractor.extract(task, file_sha256(tone_manifest), tmp_path / "fresh", progress=False)
    assert fresh.root.name == root.name
    for layer in range(fresh.num_layers):
        np.testing.assert_array_equal(LayerCache(root).layer(layer), fresh.layer(layer))
