"""Out-of-core probe training: streamed rows agree with resident ones, and memory stays flat as rows grow."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from s3prl_mi_probe.features.folder import FeaturesFolder, write_features_folder
from s3prl_mi_probe.probe.memory import MemoryPlan, parse_size, plan_memory
from s3prl_mi_probe.probe.rows import load_rows
from s3prl_mi_probe.probe.source import RowSource
from s3prl_mi_probe.probe.standardize import RunningStandardizer
from s3prl_mi_probe.probe.train import LayerProbes, probe_layers

FAST = {"progress": False, "l2_grid": (1e-4, 1e-2)}


def gaussian_layers(rng, num_rows, dims=(6, 8, 8), num_classes=5, scales=(0.3, 1.0, 2.0)):
    """Layers of rising class separability (float32) and string labels."""
    labels = rng.integers(num_classes, size=num_rows)
    layers = []
    for dim, scale in zip(dims, scales):
        means = rng.standard_normal((num_classes, dim))
        layers.append((scale * means[labels] + rng.standard_normal((num_rows, dim))).astype(np.float32))
    return layers, np.array([f"class{label}" for label in labels])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A features folder (float32, layers of widths 6, 8, 8): 3000 train, 600 dev, 600 test rows."""
    rng = np.random.default_rng(0)
    layers, labels = gaussian_layers(rng, 4200)
    splits = np.repeat(["train", "dev", "test"], [3000, 600, 600])
    return FeaturesFolder(write_features_folder(tmp_path_factory.mktemp("features"), layers, splits, labels))


def arrays_of(folder, split):
    rows = folder.rows_of(split)
    return [np.load(layer.path)[rows] for layer in folder.layers], folder.columns["label"].strings(rows)


def test_a_folder_trains_exactly_as_its_arrays_in_memory(folder):
    from_folder = LayerProbes(**FAST).fit(folder)
    assert from_folder.memory_plan_.train_resident
    in_memory = probe_layers(
        arrays_of(folder, "train"), arrays_of(folder, "test"), dev=arrays_of(folder, "dev"), **FAST
    )
    assert from_folder.evaluate(folder, split="test") == in_memory


def test_streamed_training_agrees_with_resident_training(folder):
    resident = LayerProbes(**FAST).fit(folder)
    streamed = LayerProbes(**FAST, memory_budget=parse_size("200K")).fit(folder)
    plan = streamed.memory_plan_
    assert not plan.train_resident and plan.block_rows < 3000 / 3, plan
    for split in ("dev", "test"):
        for ours, reference in zip(streamed.evaluate(folder, split=split), resident.evaluate(folder, split=split)):
            assert abs(ours["mi_bits"] - reference["mi_bits"]) < 0.01, (split, ours["layer"])
            assert ours["num_segments"] == reference["num_segments"]
    assert streamed.l2_ == resident.l2_


def test_the_estimator_follows_scikit_learn_conventions(folder):
    probes = LayerProbes(kind="linear", l2_grid=(1e-3,), max_epochs=3, progress=False)
    assert probes.get_params()["l2_grid"] == (1e-3,) and not hasattr(probes, "classes_")
    assert probes.fit(folder) is probes
    learned = [name for name in vars(probes) if name.endswith("_")]
    assert {
        "classes_",
        "layers_",
        "probe_",
        "l2_",
        "best_epoch_",
        "epochs_run_",
        "train_passes_",
        "fit_kind_",
        "num_train_segments_",
    } <= set(learned)
    assert probes.num_train_segments_ == 3000 and probes.layers_ == [0, 1, 2]
    rows = probes.evaluate(folder, split="dev")
    assert [row["layer"] for row in rows] == [0, 1, 2] and {row["split"] for row in rows} == {"dev"}


def test_layers_trained_apart_give_the_rows_of_layers_trained_together(folder):
    together = LayerProbes(**FAST, kind="mlp1", mlp_width=8, max_epochs=4).fit(folder).evaluate(folder)
    apart = [
        row
        for layers in ([0, 2], [1])
        for row in LayerProbes(**FAST, kind="mlp1", mlp_width=8, max_epochs=4, layers=layers)
        .fit(folder)
        .evaluate(folder)
    ]
    for row in together:
        [match] = [other for other in apart if other["layer"] == row["layer"]]
        assert match["mi_bits"] == pytest.approx(row["mi_bits"], abs=1e-5)


def test_large_train_splits_search_l2_on_a_subsample_first(folder):
    probes = LayerProbes(progress=False, max_epochs=5, l2_search_rows=800).fit(folder)
    assert all(len(candidates) == 2 for candidates in probes.l2_candidates_)
    assert all(l2 in candidates for l2, candidates in zip(probes.l2_, probes.l2_candidates_))
    assert all(candidates[0] < candidates[1] for candidates in probes.l2_candidates_)
    again = LayerProbes(progress=False, max_epochs=5, l2_search_rows=800).fit(folder)
    assert again.l2_candidates_ == probes.l2_candidates_ and again.l2_ == probes.l2_


def test_memory_plan_keeps_what_fits_and_streams_the_rest():
    mib = 1 << 20
    small = plan_memory(1000, 100, 13, 768, 40, state_bytes=10 * mib, budget=2 << 30)
    assert small.train_resident and small.dev_resident and small.storage == "float32"
    large = plan_memory(1_000_000, 100_000, 13, 768, 40, state_bytes=10 * mib, budget=2 << 30)
    assert not large.train_resident and not large.dev_resident
    row_bytes = 13 * 768 * 4
    assert 3 * large.block_rows * row_bytes <= 2 << 30 and large.block_rows % 256 == 0
    # On a GPU, residency is judged against device memory with float16 rows; streamed blocks are pinned.
    on_device = plan_memory(1_000_000, 100_000, 13, 768, 40, 10 * mib, 2 << 30, "cuda:0", device_free=80 << 30)
    assert on_device.train_resident and on_device.storage == "float16" and on_device.pinned
    too_big = plan_memory(1_000_000, 100_000, 13, 768, 40, 10 * mib, 2 << 30, "cuda:0", device_free=8 << 30)
    assert not too_big.train_resident and too_big.dev_resident and too_big.pinned


def test_float16_rows_standardised_on_use_match_float32_rows(folder):
    """The device-resident layout of a GPU (float16 storage, standardised per batch), exercised on the CPU."""
    source = RowSource.from_folder(folder, "train")
    targets = torch.as_tensor(folder.columns["label"].codes[folder.rows_of("train")], dtype=torch.long)
    rows = {}
    for storage in ("float32", "float16"):
        plan = MemoryPlan("cpu", True, True, source.num_rows, 512, 1000, storage)
        standardizer = RunningStandardizer(source.num_layers, source.dim)
        rows[storage] = load_rows(source, targets, plan, True, standardizer, fit_statistics=True)
    assert rows["float16"].features.dtype == torch.float16 and rows["float16"].affine is not None
    for (full, full_targets), (half, half_targets) in zip(rows["float32"].chunks(512), rows["float16"].chunks(512)):
        assert half.dtype == torch.float32 and torch.equal(full_targets, half_targets)
        torch.testing.assert_close(half, full, atol=5e-3, rtol=2e-3)
    generator = [torch.Generator().manual_seed(1) for _ in range(2)]
    batches = [next(rows[storage].batches(gen, 64)) for storage, gen in zip(("float32", "float16"), generator)]
    assert torch.equal(batches[0][1], batches[1][1])


def test_a_single_two_dimensional_array_or_mismatched_rows_get_a_clear_error():
    rng = np.random.default_rng(1)
    features, labels = rng.standard_normal((50, 4)), rng.integers(2, size=50)
    with pytest.raises(ValueError, match=r"2-D \(50, 4\): expected \[L, N, D\] \(one layer\? pass X\[None\]"):
        probe_layers((features, labels), (features[None], labels), **FAST)
    with pytest.raises(ValueError, match="has 50 rows but its labels are shaped"):
        probe_layers((features[None], labels[:40]), (features[None], labels), **FAST)
    with pytest.raises(ValueError, match="different numbers of rows"):
        probe_layers(([features, features[:40]], labels), (features[None], labels), **FAST)


def test_unseen_test_labels_are_dropped_with_a_warning(folder):
    train, test = arrays_of(folder, "train"), arrays_of(folder, "test")
    renamed = test[1].copy()
    renamed[:143] = "never_in_train"
    with pytest.warns(UserWarning, match="test: 143 of 600 rows have labels never seen in train"):
        rows = probe_layers(train, (test[0], renamed), **FAST)
    assert all(row["dropped_unseen"] == 143 and row["num_segments"] == 457 for row in rows)


MEASURE = """
import json, sys
from s3prl_mi_probe.common.allocator import release_large_blocks
from tests.support.peak_memory import PeakMemory
from s3prl_mi_probe.features.folder import FeaturesFolder
from s3prl_mi_probe.probe.train import LayerProbes

assert release_large_blocks()  # as the probe and sweep commands do
folder = FeaturesFolder(sys.argv[1], check_values=False)  # the value scan reads in chunks of its own
probes = LayerProbes(l2_grid=(1e-3, 1e-2), max_epochs=2, polish_steps=2, progress=False, memory_budget=16 << 20)
with PeakMemory() as memory:
    probes.fit(folder)
    probes.evaluate(folder)
print(json.dumps({"anon": memory.peak_anon - memory.baseline_anon, "hwm": memory.peak_hwm - memory.baseline_hwm,
                  "resident": probes.memory_plan_.train_resident}))
"""


def test_peak_memory_stays_flat_when_the_rows_grow_fourfold(tmp_path):
    rng = np.random.default_rng(2)
    growth = {}
    for num_rows in (10_000, 40_000):
        layers, labels = gaussian_layers(rng, num_rows, dims=(128,) * 4, scales=(0.2, 0.4, 0.6, 0.8))
        # Test stays at 1000 rows: the bootstrap's resample matrix grows with it, up to a fixed 64 MB.
        position = np.arange(num_rows)
        splits = np.where(position < 1000, "test", np.where(position % 10 == 1, "dev", "train"))
        root = write_features_folder(
            tmp_path / str(num_rows), [layer.astype(np.float16) for layer in layers], splits, labels
        )
        result = subprocess.run([sys.executable, "-c", MEASURE, str(root)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        growth[num_rows] = json.loads(result.stdout)
        assert not growth[num_rows]["resident"]
    in_memory_40k = 40_000 * 4 * 128 * 4  # the float32 features alone: 82 MB
    # RssAnon is sampled every 2 ms, so a short peak may be missed: 8 MB of slack, against the 62 MB
    # that the float32 features of the 30,000 more rows would take in memory.
    assert growth[40_000]["anon"] - growth[10_000]["anon"] < 8 << 20, growth
    assert growth[40_000]["hwm"] - growth[10_000]["hwm"] < 8 << 20, growth
    assert growth[40_000]["anon"] < in_memory_40k / 2, growth
