"""Fine-tuning from layer l: exact replay of the upper layers per family, what trains, and its bound."""

import numpy as np
import pytest
import torch

from s3prl_mi_probe.common.provenance import file_sha256
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.demo.random_upstreams import write_random_hubert
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.features.pooling import segment_pooling_matrix
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from s3prl_mi_probe.finetune.probes import FinetuneProbes
from s3prl_mi_probe.finetune.train import finetune_rows
from s3prl_mi_probe.finetune.upper_layers import (
    UnsupportedUpstream,
    hidden_states_with_lengths,
    upper_layers,
)
from s3prl_mi_probe.metrics.columns import METRIC_NAMES
from s3prl_mi_probe.probe.train import fit_layer_probes
from tests.support.random_upstreams import write_random_data2vec, write_random_wav2vec2, write_random_wavlm

# hub entry, writer and writer options of each tiny random upstream
FAMILIES = {
    "hubert": ("hubert_local", write_random_hubert, {}),
    "wav2vec2": ("wav2vec2_local", write_random_wav2vec2, {}),
    "wav2vec2_pre_ln": ("wav2vec2_local", write_random_wav2vec2, {"layer_norm_first": True}),
    "wavlm": ("wavlm_local", write_random_wavlm, {}),
    "wavlm_pre_ln": ("wavlm_local", write_random_wavlm, {"layer_norm_first": True, "num_layers": 3}),
    "data2vec": ("data2vec_local", write_random_data2vec, {}),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run many small ops: one intra-op thread is faster and does not fight other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def family_checkpoints(tmp_path_factory):
    """``{case: (hub entry, checkpoint path)}`` for every case of FAMILIES."""
    folder = tmp_path_factory.mktemp("family_upstreams")
    return {
        case: (entry, writer(folder / f"{case}.pt", **options)) for case, (entry, writer, options) in FAMILIES.items()
    }


def load_hub(entry, checkpoint=None):
    from s3prl import hub

    upstream = getattr(hub, entry)() if checkpoint is None else getattr(hub, entry)(ckpt=str(checkpoint))
    return upstream.eval()


@pytest.mark.parametrize("case", FAMILIES)
def test_upper_layers_replay_the_last_hidden_state_from_every_layer(family_checkpoints, case):
    upstream = load_hub(*family_checkpoints[case])
    generator = torch.Generator().manual_seed(0)
    wavs = [torch.randn(16000, generator=generator), torch.randn(9300, generator=generator)]
    with torch.no_grad():
        hidden, lengths = hidden_states_with_lengths(upstream, wavs)
        last = len(hidden) - 1
        assert lengths[0] == hidden[0].size(1) > lengths[1]
        for layer in range(last + 1):
            replay = upper_layers(upstream, layer).eval()
            assert len(replay.blocks) == last - layer
            output = replay(hidden[layer], lengths)
            for row, valid in enumerate(lengths.tolist()):
                torch.testing.assert_close(output[row, :valid], hidden[last][row, :valid], atol=1e-5, rtol=1e-5)


def test_unsupported_upstream_is_a_clear_error():
    with pytest.raises(
        UnsupportedUpstream, match=r"baseline\.expert\.UpstreamExpert.*hubert, wav2vec2, wavlm, data2vec"
    ):
        upper_layers(load_hub("fbank"), 0)


def test_a_training_step_changes_only_the_copies_and_heads(tiny_hubert):
    upstream = load_hub("hubert_local", tiny_hubert)
    original = {name: value.clone() for name, value in upstream.named_parameters()}
    probes = FinetuneProbes(upstream, from_layers=[1], num_classes=3)
    assert all(name.startswith("uppers.") or name in ("weight", "bias") for name, _ in probes.named_parameters())
    upstream_storage = {value.untyped_storage().data_ptr() for value in upstream.parameters()}
    assert not upstream_storage & {value.untyped_storage().data_ptr() for value in probes.parameters()}

    generator = torch.Generator().manual_seed(0)
    wavs = [torch.randn(8000, generator=generator), torch.randn(6000, generator=generator)]
    with torch.no_grad():
        hidden, lengths = hidden_states_with_lengths(upstream, wavs)
    pooling = [segment_pooling_matrix([0.0, 0.2], [0.2, 0.35], int(n), 320) for n in lengths]
    labels = torch.tensor([0, 1, 2, 1])
    optimizer = torch.optim.Adam(probes.parameters(), lr=1e-2)
    for _ in range(2):  # the head starts at zero, so the copies get no gradient before its first step
        optimizer.zero_grad()
        logits = probes(probes.pooled(hidden, lengths, pooling))
        torch.nn.functional.cross_entropy(logits[0], labels).backward()
        optimizer.step()

    for name, value in upstream.named_parameters():
        assert value.grad is None and torch.equal(value, original[name]), name
    copied = dict(probes.uppers[0].blocks[0].named_parameters())
    block_1 = dict(upstream.model.encoder.layers[1].named_parameters())
    assert any(not torch.equal(copied[name], block_1[name]) for name in block_1)
    assert probes.weight.abs().sum() > 0


@pytest.fixture(scope="module")
def phone_task(tone_manifest):
    return build_task(tone_manifest, TaskOptions(task="phone"))


def test_finetune_bound_is_at_least_the_linear_probes(phone_task, tone_manifest, tiny_hubert, tmp_path):
    spec = UpstreamSpec.parse(f"hubert_local={tiny_hubert}")
    cache = Extractor(spec).extract(phone_task, file_sha256(tone_manifest), tmp_path, progress=False)
    splits = {split: cache.split(split) for split in ("train", "dev", "test")}
    arrays = {split: ([np.array(layer) for layer in layers], labels) for split, (layers, labels) in splits.items()}
    linear = fit_layer_probes(
        arrays["train"], dev=arrays["dev"], classes=np.arange(len(phone_task.classes)), progress=False
    )
    linear_test = linear.evaluate(*arrays["test"], split="test")[0]

    options = {"lr": 1e-3, "head_lr": 1e-2, "max_epochs": 80, "patience": 6, "progress": False}  # tiny model, tiny data
    rows = finetune_rows(spec.load(), phone_task, [0], **options)
    assert [(row["layer"], row["split"]) for row in rows] == [(0, "dev"), (0, "test")]
    assert all(row["probe"] == "finetune" and row["l2"] is None and row["fit"] == "early_stop" for row in rows)
    assert all(set(METRIC_NAMES) <= set(row) and row["dropped_unseen"] == 0 for row in rows)
    finetune_test = rows[1]
    assert 1 <= finetune_test["best_epoch"] <= finetune_test["epochs_run"]
    assert finetune_test["num_segments"] == linear_test["num_segments"]
    # "Within noise": two standard errors of a test CE over these 56 segments are about 0.5 bits.
    assert finetune_test["mi_bits"] >= linear_test["mi_bits"] - 0.5


def test_finetune_rows_are_reproducible(phone_task, tiny_hubert):
    upstream = load_hub("hubert_local", tiny_hubert)
    first, second = (finetune_rows(upstream, phone_task, [1, 2], max_epochs=2, progress=False) for _ in range(2))
    assert first == second
