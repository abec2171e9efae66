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
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.features.cache import LayerCache
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from tests.support.tones import write_tone_corpus


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


def test_a_local_upstream_without_its_checkpoint(tmp_path, tone_manifest, cli_in_process):
    result = cli_in_process(*sweep_args(tone_manifest, tmp_path / "out", "apc_local"))
    our_line(result, 2, "s3prl-mi-probe sweep: argument --upstream:", "apc_local=CKPT_PATH")
    assert not (tmp_path / "out").exists()


def test_a_missing_checkpoint(tmp_path, tone_manifest, cli_in_process):
    result = cli_in_process(*sweep_args(tone_manifest, tmp_path / "out", f"hubert_local={tmp_path / 'nope.pt'}"))
    our_line(result, 2, "checkpoint of upstream 'hubert_local' not found", "nope.pt")
    assert not (tmp_path / "out").exists()


def test_weights_that_cannot_be_downloaded(tmp_path, tone_manifest):
    # An empty download cache and a proxy that refuses every connection: s3prl's download fails at once.
    offline = {"HOME": str(tmp_path / "home"), "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = cli(*sweep_args(tone_manifest, tmp_path / "out", "hubert"), env=offline)
    our_line(result, 1, "s3prl-mi-probe sweep: upstream 'hubert': s3prl could not download its weights", "network")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_on_a_machine_without_one(tmp_path, tone_manifest, cli_in_process):
    result = cli_in_process(*sweep_args(tone_manifest, tmp_path / "out", "fbank", extra=["--device", "cuda"]))
    our_line(result, 1, "s3prl-mi-probe sweep: no CUDA device", "add --device cpu")
    assert not (tmp_path / "out").exists()


def test_a_speaker_control_on_speaker_disjoint_splits_is_refused_before_any_work(tmp_path, cli_in_process):
    manifest = write_tone_corpus(tmp_path / "corpus", num_utterances=10, speakers=("a", "b", "c", "d", "e"))
    result = cli_in_process(*sweep_args(manifest, tmp_path / "out", "fbank", extra=["--control", "speaker"]))
    our_line(result, 1, "control key 'speaker': no dev and no test segment has a speaker that occurs in train")
    assert not (tmp_path / "out").exists()


def test_compare_of_a_missing_folder(tmp_path, cli_in_process):
    result = cli_in_process("compare", tmp_path / "nope", "--out", tmp_path / "out")
    our_line(result, 2, "s3prl-mi-probe compare: argument DIR: no folder", "nope")
    assert not (tmp_path / "out").exists()


def test_probe_of_a_missing_folder_and_a_bad_count(tmp_path, cli_in_process):
    our_line(
        cli_in_process("probe", tmp_path / "nope", "--out", tmp_path / "out"), 2, "argument FEATURES_DIR: no folder"
    )
    line = our_line(cli_in_process("probe", tmp_path, "--out", tmp_path / "out", "--max-train-segments", "0"), 2)
    assert "argument --max-train-segments: must be at least 1, got 0" in line
    assert not (tmp_path / "out").exists()


def test_probe_of_a_folder_that_is_not_a_features_folder(tmp_path, cli_in_process):
    (tmp_path / "feats").mkdir()
    (tmp_path / "feats" / "rows.tsv").write_text("split\tlabel\ntrain\ta\n")
    result = cli_in_process("probe", tmp_path / "feats", "--out", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first, *problems = result.stderr.strip().splitlines()
    assert first == f"s3prl-mi-probe probe: 2 problem(s) found in features folder {tmp_path / 'feats'}:"
    assert problems == [
        "  no layer files (layer_000.npy, layer_001.npy, ...)",
        "  rows.tsv: split 'test' has no rows",
    ]
    assert not (tmp_path / "out").exists()


def journalled_chunks(cache_dir):
    return sum(len(journal.read_text().split("\n")) - 1 for journal in cache_dir.rglob("done-rank*.txt"))


def test_ctrl_c_during_extraction_ends_in_one_line_and_the_cache_resumes(
    tmp_path, tone_manifest, tiny_hubert, cli_in_process
):
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

    resumed = cli_in_process(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (tmp_path / "out" / "sweep.csv").is_file() and LayerCache(root).complete
    task = build_task(tone_manifest, TaskOptions(task="phone", min_count=2))
    extractor = Extractor(UpstreamSpec.parse(upstream), slicing="audio", batch_size=1)
    fresh = extractor.extract(task, file_sha256(tone_manifest), tmp_path / "fresh", progress=False)
    assert fresh.root.name == root.name
    for layer in range(fresh.num_layers):
        np.testing.assert_array_equal(LayerCache(root).layer(layer), fresh.layer(layer))


def unwritable_outs(tmp_path):
    """``--out`` folders that cannot be created or written, even by root (who ignores permission bits): one
    below a regular file, and one in /proc, where no file can be created."""
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    return {"below a file": tmp_path / "notes.txt" / "out", "in /proc": "/proc/s3prl-mi-probe-out"}


@pytest.mark.parametrize(
    "command",
    [
        lambda tmp_path, manifest: ["probe", tmp_path],
        lambda tmp_path, manifest: ["sweep", "--upstream", "fbank", "--manifest", manifest, "--task", "phone"],
        lambda tmp_path, manifest: ["stats", manifest],
        lambda tmp_path, manifest: ["compare", tmp_path],
        lambda tmp_path, manifest: ["benchmark", "--protocol", "synthetic-v1", "--upstream", "fbank"],
    ],
    ids=["probe", "sweep", "stats", "compare", "benchmark"],
)
def test_an_unwritable_out_is_refused_before_any_work(tmp_path, tone_manifest, command, cli_in_process):
    arguments = command(tmp_path, tone_manifest)
    for where, out in unwritable_outs(tmp_path).items():
        line = our_line(
            cli_in_process(*arguments, "--out", out), 2, f"s3prl-mi-probe {arguments[0]}: argument --out: cannot"
        )
        assert "choose a folder you can write to" in line, where
        assert (tmp_path / "notes.txt").is_file() and not os.path.exists(out)
    assert not list(tmp_path.glob(".s3prl-mi-probe-write-check-*"))  # the write check leaves nothing behind


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--probe", "linear,linaer"], "argument --probe: unknown probe kind 'linaer'; choose among linear, mlp1"),
        (["--max-classes", "0"], "argument --max-classes: expected a number of classes of at least 2, or 'all'"),
        (["--min-count", "0"], "argument --min-count: must be at least 1, got 0"),
        (["--finetune-layers", "0,top"], "argument --finetune-layers: expected a whole number, got 'top'"),
        (["--min-duration", "0.5", "--max-duration", "0.2"], "--min-duration 0.5 must be below --max-duration 0.2"),
        (["--frames-per-utterance", "3"], "--frames-per-utterance applies to the frame tasks (frame_phone) only"),
        (["--tol-bits", "-0.01"], "argument --tol-bits: must be at least 0, got -0.01"),
        (["--tol-bits", "nan"], "argument --tol-bits: expected a finite number, got 'nan'"),
    ],
)
def test_bad_sweep_values_are_usage_errors_in_plain_words(tmp_path, tone_manifest, extra, expected, cli_in_process):
    line = our_line(cli_in_process(*sweep_args(tone_manifest, tmp_path / "out", "fbank", extra=extra)), 2, expected)
    assert line.endswith("; see s3prl-mi-probe sweep --help")
    assert "None" not in line and "[" not in line and not (tmp_path / "out").exists()


def test_a_missing_manifest_and_an_unknown_upstream_are_usage_errors(tmp_path, tone_manifest, cli_in_process):
    result = cli_in_process(*sweep_args(tmp_path / "nope" / "manifest.tsv", tmp_path / "out", "fbank"))
    our_line(result, 2, "s3prl-mi-probe sweep: argument --manifest: no file", "manifest.tsv")
    for command in (["stats"], ["validate"]):
        our_line(
            cli_in_process(*command, tmp_path / "nope.tsv"), 2, f"argument MANIFEST: no file '{tmp_path / 'nope.tsv'}'"
        )
    line = our_line(
        cli_in_process(*sweep_args(tone_manifest, tmp_path / "out", "fbnak")), 2, "s3prl has no upstream 'fbnak'"
    )
    assert "did you mean fbank" in line and "['" not in line
    assert not (tmp_path / "out").exists()


def test_validate_names_a_malformed_textgrid_in_words(tmp_path, cli_in_process):
    manifest = write_tone_corpus(tmp_path, num_utterances=6)
    (tmp_path / "utt002.TextGrid").write_text("")
    result = cli_in_process("validate", manifest)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [problem] = [line for line in result.stderr.splitlines() if "utt002.TextGrid" in line]
    assert problem.endswith("malformed TextGrid (not in Praat's TextGrid format, or cut short)")
    assert "Error" not in result.stderr


def test_ctrl_c_inside_code_built_from_a_string_still_exits_130(tmp_path):
    # dataclasses build __init__ with a string exec: an interrupt while an upstream's modules import lands there
    (tmp_path / "interrupted_doctor.py").write_text(
        "import sys\n"
        "from s3prl_mi_probe import cli\n"
        "from s3prl_mi_probe.cli import doctor\n"
        "def interrupted(args):\n"
        "    exec('raise KeyboardInterrupt')\n"
        "doctor._doctor = interrupted\n"
        "sys.exit(cli.main(['doctor']))\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "interrupted_doctor"], capture_output=True, text=True, env=environment, timeout=120
    )
    our_line(result, 130, "s3prl-mi-probe doctor: interrupted")
