"""Frame tasks in extraction: centre pooling, identical labels across frame rates, one forward for several tasks."""

import numpy as np
import pytest
import torch

from s3prl_mi_probe.common.provenance import file_sha256
from s3prl_mi_probe.corpus.audio import load_audio
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.corpus.task_kinds import task_kind
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.pooling import centre_frame_indices, centre_pooling_matrix
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec


@pytest.fixture(scope="module")
def frame_task(tone_manifest):
    return build_task(tone_manifest, TaskOptions(task="frame_phone", min_count=1, frames_per_utterance=40))


def test_each_10ms_frame_takes_the_upstream_frame_covering_its_centre():
    frames = np.arange(10)
    starts, ends = frames * 0.01, frames * 0.01 + 0.01
    # 100 Hz (fbank, 160 samples): frame k; 50 Hz (HuBERT, 320 samples): frame k // 2, as phone_linear tiles.
    assert centre_frame_indices(starts, ends, 100, 160).tolist() == frames.tolist()
    assert centre_frame_indices(starts, ends, 100, 320).tolist() == (frames // 2).tolist()
    # 400 samples: centres at 80 + 160 k samples; centre 400 (k = 2) starts frame 1 exactly.
    assert centre_frame_indices(starts, ends, 100, 400).tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    # Past the last valid frame: the last frame (s3prl pads labels past the features with it).
    assert centre_frame_indices(starts, ends, 3, 320).tolist() == [0, 0, 1, 1, 2, 2, 2, 2, 2, 2]
    matrix = centre_pooling_matrix(starts[:4], ends[:4], 5, 320)
    assert matrix.tolist() == [[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 1, 0, 0, 0]]
    assert task_kind("frame_phone").pooling == "centre" and task_kind("phone").pooling == "mean"


def _direct_hidden_states(spec, audio):
    upstream = UpstreamSpec.parse(spec).load()
    with torch.no_grad():
        return upstream([torch.from_numpy(load_audio(audio))])["hidden_states"]


SPECS = {"fbank": 160, "hubert": 320}  # upstream -> samples per frame


@pytest.fixture(scope="module")
def frame_caches(tmp_path_factory, frame_task, tone_manifest, tiny_hubert):
    specs = {"fbank": "fbank", "hubert": f"hubert_local={tiny_hubert}"}
    folder = tmp_path_factory.mktemp("frame_caches")
    return {
        name: (
            spec,
            Extractor(UpstreamSpec.parse(spec), batch_size=4).extract(
                frame_task, file_sha256(tone_manifest), folder, progress=False
            ),
        )
        for name, spec in specs.items()
    }


def test_upstreams_of_different_frame_rates_get_identical_labels(frame_caches):
    (_, fbank), (_, hubert) = frame_caches["fbank"], frame_caches["hubert"]
    np.testing.assert_array_equal(fbank.labels, hubert.labels)
    np.testing.assert_array_equal(fbank.split_codes, hubert.split_codes)
    assert fbank.labels.size == hubert.labels.size > 0
    assert fbank.meta["key_inputs"]["pooling"] == hubert.meta["key_inputs"]["pooling"] == "centre"
    assert (fbank.meta["downsample_rate"], hubert.meta["downsample_rate"]) == (SPECS["fbank"], SPECS["hubert"])


@pytest.mark.parametrize("name", list(SPECS))
def test_a_frame_row_is_the_upstream_frame_under_its_centre(frame_caches, frame_task, name):
    spec, cache = frame_caches[name]
    layers, _ = cache.split("train")
    first = frame_task.splits["train"][0]
    hidden = _direct_hidden_states(spec, first.utterance.audio)
    frame_of_label = np.round(first.starts / 0.01).astype(int) * 160 // SPECS[name]
    for layer, states in zip(layers, hidden):
        np.testing.assert_allclose(layer[: len(first.labels)], states[0, frame_of_label].numpy(), rtol=1e-4, atol=1e-4)


def test_tasks_of_one_corpus_share_each_forward_and_write_the_same_bytes(tmp_path, tone_manifest, tiny_hubert):
    tasks = [
        build_task(tone_manifest, TaskOptions(task=name, min_count=1)) for name in ("phone", "word", "frame_phone")
    ]
    sha = file_sha256(tone_manifest)
    spec = UpstreamSpec.parse(f"hubert_local={tiny_hubert}")
    shared = Extractor(spec, batch_size=4)
    forwards = []
    original = shared._forward
    shared._forward = lambda waves: forwards.append(len(waves)) or original(waves)
    together = shared.extract_tasks(tasks, sha, tmp_path / "together", progress=False)
    assert sum(forwards) == len(all_utterances(tasks[0]))  # each utterance ran once for three tasks
    for task, cache in zip(tasks, together):
        alone = Extractor(spec, batch_size=4).extract(task, sha, tmp_path / "alone", progress=False)
        assert cache.root.name == alone.root.name and cache.complete
        for k in range(cache.num_layers):
            np.testing.assert_array_equal(cache.layer(k), alone.layer(k))


def all_utterances(task):
    return [utterance for split in task.splits.values() for utterance in split]
