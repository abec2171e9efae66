"""The frame task through s3prl's real runner: ``-d mi_probe`` with the shipped frame_phone config."""

import json

from s3prl_runner import metrics_rows, run_downstream, short_run_overrides

from s3prl_mi_probe.corpus.task import TaskOptions, build_task


def test_frame_phone_through_the_runner_scores_the_same_frames_as_the_task(tmp_path, tone_manifest):
    overrides = short_run_overrides(tone_manifest, steps=40, eval_step=20, downstream_expert__frames_per_utterance=25)
    run_downstream(
        "-m", "train", "-u", "fbank", "-d", "mi_probe", "-p", str(tmp_path), "-o", overrides, task="frame_phone"
    )
    rows = metrics_rows(tmp_path)
    assert {(row["step"], row["split"]) for row in rows} == {
        (step, split) for step in (20, 40) for split in ("dev", "test")
    }
    # The shipped config keeps silence as a class (as phone_linear does); frames come from the task itself.
    task = build_task(
        tone_manifest, TaskOptions(task="frame_phone", min_count=2, silence_labels=(), frames_per_utterance=25)
    )
    assert "sil" in task.classes
    test = next(row for row in rows if row["split"] == "test" and row["step"] == 40)
    assert test["num_segments"] == task.label_counts("test").sum()
    assert test["num_classes"] == len(task.classes)
    assert test["mi_bits"] > 0.5 * test["h_y_bits"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["provenance"]["task"]["task"] == "frame_phone"
    assert summary["provenance"]["task"]["frames_per_utterance"] == 25
