"""s3prl's real runner with the relaxed probes: MLP with a control task, and fine-tuning from a layer."""

import json
import math

import torch
from s3prl_runner import metrics_rows, refusal_before_training, train_mi_probe

from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from tests.support.tones import write_tone_corpus


def train(expdir, manifest, *upstream, steps=30, **options):
    return train_mi_probe(expdir, manifest, *upstream, steps=steps, **options)


def test_mlp_probe_with_a_segment_control(tmp_path, tone_manifest):
    train(
        tmp_path,
        tone_manifest,
        "-u",
        "fbank",
        downstream_expert__probe="mlp1",
        downstream_expert__mlp_width=32,
        downstream_expert__control="segment",
    )
    rows = metrics_rows(tmp_path)
    assert {(row["split"], row["probe"]) for row in rows} == {("dev", "mlp1"), ("test", "mlp1")}
    test = next(row for row in rows if row["split"] == "test")
    assert test["accuracy"] > 0.8 and test["mi_bits"] > 1.0
    # Permuted labels carry nothing the audio could tell: the control probe is at most near chance.
    assert test["control_mi_bits"] < 0.2 and test["control_accuracy"] < 0.45
    assert math.isclose(test["selectivity"], test["accuracy"] - test["control_accuracy"])
    assert test["mi_bits_ci_low"] <= test["mi_bits"] <= test["mi_bits_ci_high"]
    assert test["accuracy_ci_low"] <= test["accuracy"] <= test["accuracy_ci_high"]
    assert test["h_y_mm_bits"] > test["h_y_bits"]


def test_finetune_from_each_layer_of_a_tiny_hubert_with_a_speaker_control(tmp_path, tiny_hubert):
    # dev speakers a, b and test speaker c occur in train; test speaker x does not: the control skips its segments.
    speakers = ("a", "b", "c", "a", "x", "b", "c", "a", "b", "c")
    manifest = write_tone_corpus(tmp_path / "corpus", num_utterances=20, speakers=speakers)
    expdir = tmp_path / "exp"
    train(
        expdir,
        manifest,
        "-u",
        "hubert_local",
        "-k",
        str(tiny_hubert),
        optimizer__lr=1e-3,
        downstream_expert__probe="finetune",
        downstream_expert__finetune_layers=[0, 2],
        downstream_expert__control="speaker",
    )
    rows = metrics_rows(expdir)
    assert {(row["layer"], row["split"]) for row in rows} == {(0, "dev"), (0, "test"), (2, "dev"), (2, "test")}
    assert all(row["probe"] == "finetune" and math.isfinite(row["mi_bits"]) for row in rows)
    for row in rows:
        assert 0 <= row["control_accuracy"] <= 1 and math.isfinite(row["control_mi_bits"])
        assert math.isclose(row["selectivity"], row["accuracy"] - row["control_accuracy"])
    task = build_task(manifest, TaskOptions(task="phone", min_count=2))
    unseen = sum(len(item.labels) for item in task.splits["test"] if item.utterance.speaker == "x")
    provenance = json.loads((expdir / "summary.json").read_text())["provenance"]
    assert provenance["control_unscored_segments"] == {"train": 0, "dev": 0, "test": unseen} and unseen > 0
    state = torch.load(expdir / "best-states-dev.ckpt", map_location="cpu", weights_only=False)["Downstream"]
    original = torch.load(tiny_hubert, map_location="cpu", weights_only=False)["model_weight"]
    # From layer 0: trained copies of both transformer blocks; from layer 2 (the top): the head alone.
    assert {name.split(".")[4] for name in state if name.startswith("probe.uppers.0.blocks.")} == {"0", "1"}
    assert not [name for name in state if name.startswith("probe.uppers.1.blocks.")]
    assert any(name.startswith("control_probe.uppers.0.blocks.1.") for name in state)  # the control's own copies
    name = "self_attn.k_proj.weight"
    assert not torch.equal(state[f"probe.uppers.0.blocks.1.{name}"], original[f"encoder.layers.1.{name}"])
    assert state["probe.weight"].shape[0] == 2


def test_a_control_keyed_on_the_target_stops_the_run_with_the_reason(tmp_path, tone_manifest):
    message = refusal_before_training(
        tmp_path / "exp", tone_manifest, "-u", "fbank", task="word", downstream_expert__control="word_type"
    )
    assert message.startswith("[mi_probe] ") and "coarsening" in message


def test_a_speaker_control_on_speaker_disjoint_splits_stops_the_run_with_the_counts(tmp_path):
    # Speakers cycle like the split pattern: train has a, b, c; dev only d; test only e.
    manifest = write_tone_corpus(tmp_path / "corpus", num_utterances=10, speakers=("a", "b", "c", "d", "e"))
    message = refusal_before_training(tmp_path / "exp", manifest, "-u", "fbank", downstream_expert__control="speaker")
    assert message.startswith(
        "[mi_probe] control key 'speaker': no dev and no test segment has a speaker that occurs in train"
    )
