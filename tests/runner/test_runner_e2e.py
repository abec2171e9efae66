"""s3prl's real runner in a subprocess, ``-d mi_probe``, on corpora written by the tests."""

import json
import math
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from s3prl_runner import metrics_rows, run_downstream, short_run_overrides, train_mi_probe

from s3prl_mi_probe.runner.dataset import resolve_num_workers
from s3prl_mi_probe.runner.shipped_configs import config_path


def train(expdir, manifest, *upstream, steps=60, **options):
    return train_mi_probe(expdir, manifest, *upstream, steps=steps, **options)


def assert_rows_complete(expdir, layers, steps):
    rows = metrics_rows(expdir)
    seen = {(row["step"], row["split"], row["layer"]) for row in rows}
    assert seen == {(step, split, layer) for step in steps for split in ("dev", "test") for layer in layers}
    for row in rows:
        assert all(math.isfinite(row[key]) for key in row if key not in ("split", "probe")), row
    return rows


def summary_layers(expdir):
    summary = json.loads((expdir / "summary.json").read_text())
    return {entry["layer"]: entry for entry in summary["layers"]}, summary["provenance"]


@pytest.fixture(scope="module")
def fbank_run(tmp_path_factory, tone_manifest):
    expdir = tmp_path_factory.mktemp("fbank_phone")
    train(expdir, tone_manifest, "-u", "fbank")
    return expdir


def test_fbank_phone_task_is_learned(fbank_run):
    assert_rows_complete(fbank_run, layers=[0], steps=[30, 60])
    layers, provenance = summary_layers(fbank_run)
    test = layers[0]["test"]
    assert test["mi_bits"] > 0.8 * test["h_y_bits"] > 1.0
    assert test["num_classes"] == 6 and test["margin_positive_frac"] > 0.8
    assert (fbank_run / "best-states-dev.ckpt").is_file()
    assert provenance["upstream"] == "fbank" and len(provenance["manifest_sha256"]) == 64
    assert provenance["versions"]["s3prl"] == "0.4.18"


def test_tiny_hubert_every_layer_in_one_run(tmp_path, tone_manifest, tiny_hubert):
    train(tmp_path, tone_manifest, "-u", "hubert_local", "-k", str(tiny_hubert))
    assert_rows_complete(tmp_path, layers=[0, 1, 2], steps=[30, 60])
    layers, provenance = summary_layers(tmp_path)
    assert sorted(layers) == [0, 1, 2]
    # A random network keeps much of the tone identity: clearly above 0 bits and above chance accuracy.
    assert max(entry["test"]["mi_bits"] for entry in layers.values()) > 0.15
    assert max(entry["test"]["accuracy"] for entry in layers.values()) > 2 / layers[0]["test"]["num_classes"]
    assert provenance["upstream_ckpt_sha256"] and provenance["layers"] == [0, 1, 2]
    events = list(tmp_path.glob("events.out.tfevents.*"))
    tags = _tensorboard_tags(events[0])
    assert "mi_probe/test-mi_bits-layer_2" in tags and "mi_probe/train-ce_bits-layer_0" in tags


def _tensorboard_tags(event_file):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    return accumulator.Tags()["scalars"]


def test_layer_option_probes_exactly_one_layer_of_the_word_task(tmp_path, tone_manifest, tiny_hubert):
    train(tmp_path, tone_manifest, "-u", "hubert_local", "-k", str(tiny_hubert), "-l", "1", task="word")
    rows = assert_rows_complete(tmp_path, layers=[1], steps=[30, 60])
    layers, provenance = summary_layers(tmp_path)
    assert sorted(layers) == [1] and provenance["layers"] == [1]
    assert layers[1]["test"]["accuracy"] > 2 / layers[1]["test"]["num_classes"]  # well above chance
    assert len(rows) == 4


def test_shuffled_labels_give_no_information(tmp_path, shuffled_manifest):
    # The shipped learning rate, evaluated often: early stopping on dev must catch the probe before
    # it memorises the training labels.
    result = train(tmp_path, shuffled_manifest, "-u", "fbank", steps=60, eval_step=10, optimizer__lr=1e-3)
    layers, _ = summary_layers(tmp_path)
    test = layers[0]["test"]
    assert test["h_y_bits"] > 2.0
    assert -0.5 < test["mi_bits"] < 0.1
    # Every evaluation whose table shows a negative bound says below it what that means.
    negative = [row for row in metrics_rows(tmp_path) if min(row["mi_bits"], row["mi_bits_ci_low"]) < 0]
    log = result.stdout + result.stderr
    assert negative and log.count("Why a bound can be negative") == len({(r["step"], r["split"]) for r in negative})


def test_resume_and_evaluate_the_best_checkpoint(fbank_run):
    result = run_downstream("-m", "train", "-e", str(fbank_run), "-o", "config.runner.total_steps=90")
    assert "Resume from" in result.stdout + result.stderr
    steps = sorted({row["step"] for row in metrics_rows(fbank_run)})
    assert steps == [30, 60, 90]
    # As the README writes it: without --device, here on a machine without CUDA.
    result = run_downstream(
        "-m", "evaluate", "-e", str(fbank_run / "best-states-dev.ckpt"), device=None, env={"CUDA_VISIBLE_DEVICES": ""}
    )
    assert "[mi_probe] no CUDA device: running on the CPU" in result.stderr
    evaluation = json.loads((fbank_run / "evaluate-test.json").read_text())
    assert evaluation["checkpoint"].endswith("best-states-dev.ckpt")
    [row] = evaluation["rows"]
    layers, _ = summary_layers(fbank_run)
    assert row["mi_bits"] > 1.0 and row["num_segments"] == layers[0]["test"]["num_segments"]
    # The rows carry the step the checkpoint was saved at, not s3prl's 0 for "not during training".
    assert row["step"] == layers[0]["best_dev_step"] > 0


def test_run_downstream_py_from_an_s3prl_source_checkout_without_config_or_device(tmp_path, tone_manifest):
    """``run_downstream.py -d mi_probe`` as a new user types it in an s3prl checkout (not this repository): no
    ``-c``, no ``--device`` on a machine without a GPU, loader workers ``auto``."""
    sdist = Path(sys.prefix) / "s3prl-sdist" / "s3prl-0.4.18.tar.gz"
    assert sdist.is_file(), "make install downloads s3prl's sdist into .venv/s3prl-sdist"
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    checkout = tmp_path / "s3prl-0.4.18" / "s3prl"
    assert (checkout / "run_downstream.py").is_file()
    expdir = tmp_path / "exp"
    overrides = short_run_overrides(tone_manifest, steps=10, eval_step=10, downstream_expert__num_workers="auto")
    result = run_downstream(
        *("-m", "train", "-u", "fbank", "-d", "mi_probe", "-p", str(expdir), "-o", overrides),
        cwd=checkout,
        module=False,
        task=None,  # the script's default, ./downstream/mi_probe/config.yaml, exists nowhere
        device=None,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    stdout = result.stdout.splitlines()
    assert [line for line in stdout if "-c" in line] == [
        f"[mi_probe] no -c given: using the shipped phone config {config_path('phone')}"
    ]
    [device] = [line for line in result.stderr.splitlines() if "CUDA" in line]
    assert (
        device
        == "[mi_probe] no CUDA device: running on the CPU instead of --device cuda (add --device cpu to choose it)"
    )
    [task] = [line for line in stdout if line.startswith("[mi_probe] task=")]
    assert task.endswith(f"loader_workers={resolve_num_workers('auto')}")
    assert_rows_complete(expdir, layers=[0], steps=[10])
    # Noise that is not the user's concern stays out of the log.
    for noise in ("Traceback", "Warning", "ESPnet"):
        assert noise not in result.stderr, noise


def test_bad_input_is_one_error_listing_every_problem(tmp_path, tone_manifest):
    corpus = tmp_path / "corpus"
    shutil.copytree(tone_manifest.parent, corpus)
    lines = (corpus / "manifest.tsv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    (corpus / "utt000.wav").unlink()
    (corpus / "utt001.TextGrid").write_text("this is not a TextGrid")
    (corpus / "utt002.TextGrid").write_text((corpus / "utt002.TextGrid").read_text().replace('"phones"', '"phonez"'))
    (corpus / "manifest.tsv").write_text(
        "\n".join([header, *rows, "utt999\tnone.wav\tnone.TextGrid\tvalid\ts1"]) + "\n"
    )
    expdir = tmp_path / "exp"
    result = train(expdir, corpus / "manifest.tsv", "-u", "fbank", check=False)
    assert result.returncode != 0
    for expected in [
        f"manifest.tsv:2 (utt000): {corpus / 'utt000.wav'}: audio file not found",
        f"manifest.tsv:3 (utt001): {corpus / 'utt001.TextGrid'}: malformed TextGrid",
        f"manifest.tsv:4 (utt002): {corpus / 'utt002.TextGrid'}: no 'phones' tier",
        "manifest.tsv:26 (utt999): unknown split 'valid'",
    ]:
        assert expected in result.stderr, expected
    assert not expdir.exists()  # checked before s3prl made the experiment folder
