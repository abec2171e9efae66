"""All-layer extraction into the on-disk cache: pooling, reuse, and resume after a kill."""

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
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec


@pytest.fixture(scope="module")
def phone_task(tone_manifest):
    return build_task(tone_manifest, TaskOptions(task="phone", min_count=2))


def extract(spec, task, manifest, cache_dir, **options):
    return Extractor(UpstreamSpec.parse(spec), **options).extract(
        task, file_sha256(manifest), cache_dir, progress=False
    )


def test_spec_labels_and_errors(tmp_path, tiny_hubert):
    assert UpstreamSpec.parse("fbank").label == "fbank"
    assert UpstreamSpec.parse(f"hubert_local={tiny_hubert}").label == "hubert_local:tiny_hubert"
    with pytest.raises(ValueError, match="did you mean"):
        UpstreamSpec.parse(f"hubert_locl={tiny_hubert}").load()
    missing = tmp_path / "missing.pt"
    with pytest.raises(ValueError, match="checkpoint of upstream 'hubert_local' not found"):
        UpstreamSpec.parse(f"hubert_local={missing}")
    with pytest.raises(ValueError, match="checkpoint of upstream 'hubert_local' not found"):
        UpstreamSpec("hubert_local", missing).load()
    with pytest.raises(ValueError, match="give it as apc_local=CKPT_PATH"):
        UpstreamSpec.parse("apc_local")


def test_feature_slicing_matches_the_mean_of_frames_inside_each_segment(
    tmp_path, phone_task, tone_manifest, tiny_hubert
):
    cache = extract(f"hubert_local={tiny_hubert}", phone_task, tone_manifest, tmp_path, batch_size=1)
    assert cache.complete and cache.num_layers == 3
    layers, labels = cache.split("train")
    first = phone_task.splits["train"][0]
    np.testing.assert_array_equal(labels[: len(first.labels)], first.labels)
    # Reference: run the upstream directly on the first training utterance.
    from s3prl_mi_probe.corpus.audio import load_audio

    upstream = UpstreamSpec.parse(f"hubert_local={tiny_hubert}").load()
    with torch.no_grad():
        hidden = upstream([torch.from_numpy(load_audio(first.utterance.audio))])["hidden_states"]
    centres = (np.arange(hidden[0].size(1)) + 0.5) * 320 / 16000
    for k in range(3):
        for s in range(len(first.labels)):
            inside = (centres >= first.starts[s]) & (centres < first.ends[s])
            expected = hidden[k][0, inside].mean(dim=0).numpy()
            np.testing.assert_allclose(layers[k][s], expected, rtol=1e-4, atol=1e-5)


def test_cache_is_reused_and_keyed(tmp_path, phone_task, tone_manifest):
    first = extract("fbank", phone_task, tone_manifest, tmp_path)
    again = extract("fbank", phone_task, tone_manifest, tmp_path)
    assert again.root == first.root
    half = extract("fbank", phone_task, tone_manifest, tmp_path, dtype="float16")
    audio = extract("fbank", phone_task, tone_manifest, tmp_path, slicing="audio")
    assert len({first.root, half.root, audio.root}) == 3
    assert half.layer(0).dtype == np.float16
    np.testing.assert_allclose(half.layer(0), first.layer(0), rtol=2e-3, atol=2e-3)
    assert not np.allclose(audio.layer(0), first.layer(0))


KILLABLE_EXTRACTION = """
import sys, time
from pathlib import Path
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.features import extract as module
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from s3prl_mi_probe.common.provenance import file_sha256

manifest, checkpoint, cache_dir = sys.argv[1:]
original = module.Extractor._pool_chunk
def slow(self, items):  # slow enough that the test can kill the run in the middle
    time.sleep(0.3)
    return original(self, items)
module.Extractor._pool_chunk = slow
task = build_task(manifest, TaskOptions(task="phone", min_count=2))
extractor = module.Extractor(UpstreamSpec.parse("hubert_local=" + checkpoint), batch_size=1)
extractor.extract(task, file_sha256(manifest), Path(cache_dir), progress=False)
"""


def test_killed_extraction_resumes_to_identical_results(tmp_path, phone_task, tone_manifest, tiny_hubert):
    killed_dir, fresh_dir = tmp_path / "killed", tmp_path / "fresh"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_EXTRACTION, str(tone_manifest), str(tiny_hubert), str(killed_dir)]
    )
    deadline = time.time() + 300
    journalled = 0
    while time.time() < deadline and process.poll() is None:
        journals = list(killed_dir.glob("*/done-rank0.txt"))
        journalled = len(journals[0].read_text().splitlines()) if journals else 0
        if journalled >= 3:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    [root] = killed_dir.iterdir()
    assert journalled >= 3 and not (root / "complete.json").exists()

    resumed = extract(f"hubert_local={tiny_hubert}", phone_task, tone_manifest, killed_dir, batch_size=1)
    fresh = extract(f"hubert_local={tiny_hubert}", phone_task, tone_manifest, fresh_dir, batch_size=1)
    assert resumed.root.name == fresh.root.name and resumed.complete
    journal = [int(line) for line in (resumed.root / "done-rank0.txt").read_text().split()]
    assert sorted(journal) == list(range(resumed.meta["num_chunks"])), "finished chunks must not be redone"
    for k in range(3):
        assert np.array_equal(np.asarray(resumed.layer(k)), np.asarray(fresh.layer(k)))
