"""Control tasks: control labels from each key, refused keys, and selectivity on cached features."""

from collections import Counter

import numpy as np
import pytest

from s3prl_mi_probe.corpus.control import UNSEEN, control_labels, control_task, unscored_segments
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from tests.support.tones import write_tone_corpus


@pytest.fixture(scope="module")
def phone_task(tone_manifest):
    return build_task(tone_manifest, TaskOptions(task="phone"))


def test_segment_control_permutes_each_split(phone_task):
    controls = control_labels(phone_task, "segment", seed=3)
    for split, items in phone_task.splits.items():
        labels = np.concatenate([item.labels for item in items])
        assert Counter(controls[split].tolist()) == Counter(labels.tolist())
        assert (controls[split] != labels).any()
    again = control_labels(phone_task, "segment", seed=3)
    assert all((again[split] == controls[split]).all() for split in controls)


def test_word_type_control_gives_every_word_one_label(phone_task):
    controls = control_labels(phone_task, "word_type", seed=0)
    label_of_word = {}
    for split, items in phone_task.splits.items():
        words = np.concatenate([item.words for item in items])
        assert words.size == controls[split].size and "" not in set(words)
        for word, label in zip(words, controls[split]):
            assert label_of_word.setdefault(word, label) == label
    assert len(label_of_word) >= 5 and set(label_of_word.values()) <= set(range(len(phone_task.classes)))


def test_speaker_control_follows_the_speaker(phone_task):
    controls = control_labels(phone_task, "speaker", seed=0)
    for split, items in phone_task.splits.items():
        speakers = np.concatenate([[item.utterance.speaker] * len(item.labels) for item in items])
        for speaker in set(speakers):
            assert len(set(controls[split][speakers == speaker].tolist())) == 1


@pytest.mark.parametrize(("task", "key"), [("word", "word_type"), ("phone", "phone"), ("word", "word")])
def test_a_control_keyed_on_the_target_is_refused_with_the_reason(tone_manifest, task, key):
    with pytest.raises(ValueError, match="coarsening") as error:
        control_labels(build_task(tone_manifest, TaskOptions(task=task, min_count=2)), key)
    assert "segment" in str(error.value) and "speaker" in str(error.value)


def test_missing_keys_are_listed_per_utterance(tmp_path):
    task = build_task(write_tone_corpus(tmp_path, num_utterances=10, speakers=()), TaskOptions(task="phone"))
    with pytest.raises(ValueError, match="speaker") as error:
        control_labels(task, "speaker")
    assert all(f"utt{index:03d}" in str(error.value) for index in range(10))


def test_unknown_key_names_the_keys(phone_task):
    with pytest.raises(ValueError, match="segment, word_type, speaker"):
        control_labels(phone_task, "accent")


def test_a_speaker_control_on_speaker_disjoint_splits_is_refused_with_the_counts(tmp_path):
    # Speakers cycle like the split pattern: train has a, b, c; dev only d; test only e.
    manifest = write_tone_corpus(tmp_path, num_utterances=10, speakers=("a", "b", "c", "d", "e"))
    task = build_task(manifest, TaskOptions(task="phone", min_count=2))
    with pytest.raises(ValueError) as error:
        control_labels(task, "speaker")
    message = str(error.value)
    assert "no dev and no test segment has a speaker that occurs in train" in message
    dev_segments = sum(len(item.labels) for item in task.splits["dev"])
    assert f"dev: 1 speaker(s), 1 of them not in train ({dev_segments} segments)" in message
    assert "chance by construction" in message and "'segment'" in message


def test_held_out_segments_of_unseen_key_values_are_not_scored(tmp_path):
    # dev speakers a, b (seen in train); test speakers x (never in train) and c (seen).
    speakers = ("a", "b", "c", "a", "x", "b", "c", "a", "b", "c")
    task = build_task(write_tone_corpus(tmp_path, num_utterances=20, speakers=speakers), TaskOptions(min_count=2))
    controls = control_labels(task, "speaker", seed=0)
    for split, items in task.splits.items():
        speaker_of_segment = np.concatenate([[item.utterance.speaker] * len(item.labels) for item in items])
        assert ((controls[split] == UNSEEN) == (speaker_of_segment == "x")).all()
    unseen_test = int((controls["test"] == UNSEEN).sum())
    assert unscored_segments(controls) == {"train": 0, "dev": 0, "test": unseen_test} and unseen_test > 0
    scored = control_task(task, controls)
    assert all(item.utterance.speaker != "x" for item in scored.splits["test"])
    assert sum(len(item.labels) for item in scored.splits["test"]) == controls["test"].size - unseen_test
    assert all((item.labels >= 0).all() and len(item.starts) == len(item.labels) for item in scored.splits["test"])
