"""The benchmark command on synthetic-v1: interrupted, resumed, merged; the leaderboard matches the sweeps."""

import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from s3prl_mi_probe.benchmark.protocol import load_protocol, parse_protocol
from s3prl_mi_probe.benchmark.run import _probes_for
from s3prl_mi_probe.cli import main
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from s3prl_mi_probe.report.rows import read_sweep_csv

TASKS = ("word", "phone", "frame_phone")


def benchmark_argv(out, tiny_hubert, *extra):
    specs = ["--upstream", "fbank", "--upstream", f"hubert_local={tiny_hubert}"]
    return ["benchmark", "--protocol", "synthetic-v1", *specs, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def resumed_benchmark(tmp_path_factory, tiny_hubert):
    """synthetic-v1 for fbank and a tiny HuBERT: Ctrl-C once the first cell finished, then the same command again."""
    out = tmp_path_factory.mktemp("benchmark") / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "s3prl_mi_probe", *benchmark_argv(out, tiny_hubert)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_cell = out / "runs" / "fbank" / "word" / "cell.json"
    deadline = time.monotonic() + 600
    while not first_cell.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    finished_before = {path.parent.relative_to(out / "runs") for path in out.glob("runs/*/*/cell.json")}
    stamps = {cell: (out / "runs" / cell / "sweep.csv").stat().st_mtime_ns for cell in finished_before}
    assert main(benchmark_argv(out, tiny_hubert)) == 0
    return out, process.returncode, stderr, stamps


def test_interrupt_is_one_line_and_finished_cells_are_not_redone(resumed_benchmark):
    out, returncode, stderr, stamps = resumed_benchmark
    assert returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("s3prl-mi-probe benchmark: interrupted;")
    assert "Traceback" not in stderr
    assert 1 <= len(stamps) < 6
    for cell, stamp in stamps.items():
        assert (out / "runs" / cell / "sweep.csv").stat().st_mtime_ns == stamp, cell
    assert len(list(out.glob("runs/*/*/cell.json"))) == 6


def test_leaderboard_agrees_with_the_sweeps(resumed_benchmark):
    out, *_ = resumed_benchmark
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"):
        assert (out / name).stat().st_size > 500, name
    with open(out / "leaderboard.csv") as stream:
        table = list(csv.DictReader(stream))
    entries = {(row["task"], row["upstream"]): row for row in table}
    fractions = {}
    for task in TASKS:
        for upstream, folder in (("fbank", "fbank"), ("hubert_local:tiny_hubert", "hubert_local_tiny_hubert")):
            rows = read_sweep_csv(out / "runs" / folder / task / "sweep.csv")
            dev = [row for row in rows if row["split"] == "dev" and row["probe"] == "linear"]
            chosen = max(dev, key=lambda row: (row["mi_bits"], -row["layer"]))["layer"]
            test = next(r for r in rows if r["split"] == "test" and r["probe"] == "linear" and r["layer"] == chosen)
            entry = entries[(task, upstream)]
            assert int(entry["best_layer"]) == chosen
            assert float(entry["mi_bits"]) == pytest.approx(test["mi_bits"], rel=1e-12)
            assert float(entry["h_y_bits"]) == pytest.approx(test["h_y_bits"], rel=1e-12)
            assert int(entry["test_segments"]) == test["num_segments"]
            fractions.setdefault(upstream, []).append(test["mi_bits"] / test["h_y_bits"])
        # Both upstreams are scored against the same labels, whatever their frame rate.
        assert entries[(task, "fbank")]["test_segments"] == entries[(task, "hubert_local:tiny_hubert")]["test_segments"]
        assert entries[(task, "fbank")]["h_y_bits"] == entries[(task, "hubert_local:tiny_hubert")]["h_y_bits"]
        ranked = sorted((float(entries[(task, u)]["mi_bits"]), int(entries[(task, u)]["rank"])) for u in fractions)
        assert ranked[-1][1] == 1
    for upstream, values in fractions.items():
        assert float(entries[("overall", upstream)]["mi_fraction"]) == pytest.approx(sum(values) / 3)
    markdown = (out / "leaderboard.md").read_text()
    assert "frames used: train" in markdown and "(16 per utterance, seeded)" in markdown
    assert (out / "plots" / "frame_phone_mi_bits.png").is_file()


def test_add_merges_folders_of_other_machines(tmp_path, resumed_benchmark, tiny_hubert):
    out, *_ = resumed_benchmark
    machines = {}
    for name, upstream in (("a", "fbank"), ("b", "hubert_local_tiny_hubert")):
        machines[name] = tmp_path / name
        (machines[name] / "runs").mkdir(parents=True)
        shutil.copy(out / "benchmark.json", machines[name])
        shutil.copytree(out / "runs" / upstream, machines[name] / "runs" / upstream)
    merged = tmp_path / "merged"
    argv = ["benchmark", "--protocol", "synthetic-v1", "--out", str(merged)]
    assert main([*argv, "--add", str(machines["a"]), "--add", str(machines["b"])]) == 0
    assert (merged / "leaderboard.csv").read_text() == (out / "leaderboard.csv").read_text()

    # Cells arriving with --add are finished: the same upstream given with --upstream is not run again.
    again = tmp_path / "again"
    assert (
        main(
            [
                "benchmark",
                "--protocol",
                "synthetic-v1",
                "--upstream",
                "fbank",
                "--out",
                str(again),
                "--add",
                str(machines["a"]),
            ]
        )
        == 0
    )
    assert not (again / "corpora").exists() and not (again / "cache").exists()
    assert len(list(again.glob("runs/*/*/cell.json"))) == 3

    clash = tmp_path / "clash"
    shutil.copytree(machines["b"], clash)
    marker = clash / "runs" / "hubert_local_tiny_hubert" / "word" / "cell.json"
    record = json.loads(marker.read_text())
    marker.write_text(json.dumps({**record, "checkpoint_sha256": "0" * 64}))
    message = main([*argv, "--add", str(clash), "--add", str(tmp_path / "nothing")])
    assert "with another checkpoint" in message and "not a benchmark output folder" in message


def test_a_folder_of_another_protocol_is_refused(tmp_path, tiny_hubert):
    other = tmp_path / "other.yaml"
    other.write_text(load_protocol("synthetic-v1").text.replace("min_count: 5", "min_count: 6", 1))
    out = tmp_path / "out"
    (out).mkdir()
    shutil.copy(load_protocol("synthetic-v1").source, tmp_path / "same.yaml")
    (out / "benchmark.json").write_text(
        json.dumps(
            {
                "protocol": "synthetic-v1",
                "protocol_sha256": load_protocol("synthetic-v1").sha256,
                "protocol_source": "x",
                "protocol_text": "",
            }
        )
    )
    message = main(["benchmark", "--protocol", str(other), "--upstream", "fbank", "--out", str(out)])
    assert "holds a benchmark of protocol synthetic-v1" in message and "use another --out" in message


def test_missing_manifests_name_the_commands_that_make_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = main(["benchmark", "--protocol", "librispeech-v1", "--upstream", "fbank", "--out", "out"])
    assert message.startswith("s3prl-mi-probe benchmark: 2 problem(s) found in the benchmark into out:")
    assert "s3prl-mi-probe prepare librispeech" in message and "s3prl-mi-probe prepare libriphone" in message
    assert "--manifest librispeech=PATH" in message
    assert not list((tmp_path / "out").glob("runs/*"))


def test_finetune_only_for_upstreams_whose_layers_it_copies(tiny_hubert):
    text = load_protocol("synthetic-v1").text.replace("probes: [linear]", "probes: [linear, finetune]")
    protocol = parse_protocol(text)
    assert protocol.probes == ("linear", "finetune")
    fbank = Extractor(UpstreamSpec.parse("fbank"))
    hubert = Extractor(UpstreamSpec.parse(f"hubert_local={tiny_hubert}"))
    assert _probes_for(protocol, fbank, fbank.spec) == ("linear",)
    assert _probes_for(protocol, hubert, hubert.spec) == ("linear", "finetune")
