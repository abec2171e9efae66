"""The probe command on features folders: outputs, dev carving, subsampling, controls, layers across ranks."""

import json

import numpy as np
import pytest
import torch

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.corpus.control import UNSEEN
from s3prl_mi_probe.features.folder import FeaturesFolder, write_features_folder
from s3prl_mi_probe.probe.stopping import DEFAULT_PATIENCE
from s3prl_mi_probe.probe.train import DEFAULT_L2_GRID, LayerProbes
from s3prl_mi_probe.probing.folder import folder_control_labels, folder_splits
from s3prl_mi_probe.probing.rows import fitted_seeds
from s3prl_mi_probe.probing.settings import ProbeSettings
from s3prl_mi_probe.report.rows import read_sweep_csv


def write_folder(root, num_rows=2400, with_dev=True, seed=0):
    """Three float16 layers of rising separability, 6 classes, speakers as groups and a 'speaker' column."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(6, size=num_rows)
    layers = []
    for scale in (0.3, 1.0, 2.5):
        means = rng.standard_normal((6, 8))
        layers.append((scale * means[labels] + rng.standard_normal((num_rows, 8))).astype(np.float16))
    speakers = np.array([f"spk{k}" for k in rng.integers(12, size=num_rows)])
    splits = np.where(speakers == "spk0", "test", np.where(speakers == "spk1", "dev" if with_dev else "train", "train"))
    columns = {"group": speakers, "speaker": speakers}
    return write_features_folder(root, layers, splits, [f"ph{label}" for label in labels], columns)


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("features"))


def probe_command(features, out, *extra):
    return ["probe", str(features), "--out", str(out), *extra]


def test_probe_writes_the_sweep_outputs_with_provenance(features, tmp_path):
    assert main(probe_command(features, tmp_path, "--max-train-segments", "900", "--upstream-label", "mine")) == 0
    rows = read_sweep_csv(tmp_path / "sweep.csv")
    assert {(row["layer"], row["split"]) for row in rows} == {(k, s) for k in range(3) for s in ("dev", "test")}
    assert all(row["upstream"] == "mine" and row["task"] == "custom" for row in rows)
    assert all(row["num_train_segments"] == 900 for row in rows)
    test_bits = [row["mi_bits"] for row in rows if row["split"] == "test"]
    assert test_bits[0] < test_bits[1] < test_bits[2]
    provenance = json.loads((tmp_path / "sweep.json").read_text())["provenance"]
    assert provenance["max_train_segments"] == 900 and provenance["num_train_segments"] == 900
    assert provenance["train_segments_available"] > 900 and not provenance["dev_carved_from_train"]
    assert len(provenance["rows_tsv_sha256"]) == 64 and provenance["layers"][0] == {
        "rows": 2400,
        "dim": 8,
        "dtype": "float16",
    }
    assert provenance["settings"]["memory_budget"] == 2 << 30 and provenance["memory_plan"]["train_resident"]
    for name in ("mi_bits.png", "accuracy.png", "margin.png"):
        assert (tmp_path / "plots" / name).is_file()
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_the_stopping_tolerance_reaches_every_probe_and_the_csv_records_the_passes(features, tmp_path):
    assert main(probe_command(features, tmp_path / "coarse", "--tol-bits", "8")) == 0
    assert main(probe_command(features, tmp_path / "default")) == 0
    coarse, default = (read_sweep_csv(tmp_path / name / "sweep.csv") for name in ("coarse", "default"))
    settings = json.loads((tmp_path / "coarse" / "sweep.json").read_text())["provenance"]["settings"]
    assert settings["tol_bits"] == 8
    # No gain can reach 8 bits (H(Y) is 2.6 bits here): every probe stops within `patience` rounds (L-BFGS,
    # which trains these small splits, may stop sooner: its steps count as converged below a tenth of it).
    assert max(row["epochs_run"] for row in coarse) <= DEFAULT_PATIENCE
    assert sum(row["epochs_run"] for row in coarse) < sum(row["epochs_run"] for row in default)
    for row in default:
        assert row["fit"] in ("early_stop", "converged") and row["l2"] > 0
        assert 0 < row["best_epoch"] <= row["epochs_run"] < row["train_passes"]


def test_without_dev_rows_dev_is_carved_by_group(tmp_path):
    features = write_folder(tmp_path / "features", num_rows=1500, with_dev=False)
    assert (
        main(
            probe_command(features, tmp_path / "out", "--memory-budget", "300K", "--probe", "mlp1", "--mlp-width", "8")
        )
        == 0
    )
    provenance = json.loads((tmp_path / "out" / "sweep.json").read_text())["provenance"]
    assert provenance["dev_carved_from_train"] and not provenance["memory_plan"]["train_resident"]
    assert {row["probe"] for row in read_sweep_csv(tmp_path / "out" / "sweep.csv")} == {"mlp1"}


def test_control_labels_follow_the_key_column(features, tmp_path):
    rng = np.random.default_rng(3)
    splits = np.array(["train"] * 300 + ["dev"] * 60 + ["test"] * 60)
    sessions = np.array([f"s{k}" for k in rng.integers(8, size=splits.size)])
    sessions[-10:] = "new"  # ten test rows of a session never seen in train
    layers = [rng.standard_normal((splits.size, 4)).astype(np.float32)]
    shared = write_features_folder(
        tmp_path / "shared", layers, splits, [f"c{k}" for k in rng.integers(3, size=splits.size)], {"session": sessions}
    )
    folder = FeaturesFolder(shared)
    controls = folder_control_labels(folder, "session", seed=4)
    assert np.all(controls[-10:] == UNSEEN) and np.all(controls[:-10] != UNSEEN)
    for session in set(sessions[:-10]):
        assert np.unique(controls[sessions == session]).size == 1
    assert np.array_equal(controls, folder_control_labels(folder, "session", seed=4))
    assert main(probe_command(shared, tmp_path / "out", "--control", "session")) == 0
    provenance = json.loads((tmp_path / "out" / "sweep.json").read_text())["provenance"]
    assert provenance["control"] == {"key": "session", "unscored_segments": {"train": 0, "dev": 0, "test": 10}}

    disjoint = FeaturesFolder(features)
    with pytest.raises(ValueError, match="no dev and no test segment has a speaker that occurs in train"):
        folder_control_labels(disjoint, "speaker")
    permuted = folder_control_labels(disjoint, "segment", seed=4)
    labels = disjoint.columns["label"].codes
    for split in ("train", "dev", "test"):
        rows = disjoint.rows_of(split)
        assert sorted(permuted[rows]) == sorted(labels[rows]) and not np.array_equal(permuted[rows], labels[rows])
    with pytest.raises(ValueError, match="choose among segment, group, speaker"):
        folder_control_labels(disjoint, "label")


def test_analyses_on_a_folder_record_their_subsample(features, tmp_path):
    extra = ["--control", "segment", "--hard-margin", "--hard-margin-rows", "300", "--seeds", "2", "--mdl"]
    assert main(probe_command(features, tmp_path, *extra)) == 0
    rows = read_sweep_csv(tmp_path / "sweep.csv")
    assert all(row["hard_margin_segments"] == 300 and row["num_seeds"] == 2 for row in rows)
    assert all(row["selectivity"] == pytest.approx(row["accuracy"] - row["control_accuracy"]) for row in rows)
    assert all(row["compression"] > 0 for row in rows)
    assert json.loads((tmp_path / "sweep.json").read_text())["provenance"]["hard_margin_segments"] == 300


def test_torchrun_shares_the_layers_and_gives_the_rows_of_one_process(features, tmp_path, torchrun_cli):
    result = torchrun_cli(*probe_command(features, tmp_path / "ranks", "--probe", "linear,mlp1", "--mlp-width", "8"))
    assert result.returncode == 0, result.stderr[-4000:]
    assert main(probe_command(features, tmp_path / "one", "--probe", "linear,mlp1", "--mlp-width", "8")) == 0
    ranks, one = (read_sweep_csv(tmp_path / name / "sweep.csv") for name in ("ranks", "one"))
    assert [(row["probe"], row["split"], row["layer"]) for row in ranks] == [
        (row["probe"], row["split"], row["layer"]) for row in one
    ]
    for shared, alone in zip(ranks, one):
        assert abs(shared["mi_bits"] - alone["mi_bits"]) < 0.005, (shared, alone)
    provenance = json.loads((tmp_path / "ranks" / "sweep.json").read_text())["provenance"]
    assert [rank["layers"] for rank in provenance["ranks"]] == [[0, 1], [2]]


def test_later_seeds_train_at_the_l2_the_first_seed_chose_and_still_differ(features):
    folder = FeaturesFolder(features)
    settings = ProbeSettings(seeds=2, mlp_width=8)
    sources, _ = folder_splits(folder, settings)
    first, later = fitted_seeds(sources, "mlp1", settings, sources["train"].layer_ids, progress=False)
    assert not first.seed_independent_  # an MLP's initial weights and the minibatch order are drawn
    assert first.l2_candidates_ == [list(DEFAULT_L2_GRID)] * 3
    assert later.l2_candidates_ == [[l2] for l2 in first.l2_] and later.l2_ == first.l2_
    assert not torch.equal(first.probe_.weight.detach(), later.probe_.weight.detach())


def test_a_full_batch_linear_probe_is_trained_once_for_every_seed(features, tmp_path, monkeypatch):
    folder = FeaturesFolder(features)
    settings = ProbeSettings(seeds=3)
    sources, _ = folder_splits(folder, settings)
    first, *later = fitted_seeds(sources, "linear", settings, sources["train"].layer_ids, progress=False)
    assert first.seed_independent_ and all(probes is first for probes in later)
    # What that rests on: another seed, trained on its own at the same L2, gives the same probes.
    alone = LayerProbes(seed=7, l2_candidates=[[l2] for l2 in first.l2_], progress=False)
    alone.fit(sources["train"], dev=sources["dev"])
    assert torch.allclose(alone.probe_.weight, first.probe_.weight, atol=1e-4)
    assert alone.evaluate(sources["test"])[0]["mi_bits"] == pytest.approx(
        first.evaluate(sources["test"])[0]["mi_bits"], abs=1e-5
    )
    # Draws make a fit seed-dependent: minibatch Adam, or a dev carved off train.
    assert not LayerProbes(full_batch_rows=0, max_epochs=2, progress=False).fit(sources["train"]).seed_independent_
    assert not LayerProbes(progress=False).fit(sources["train"]).seed_independent_
    evaluations = []
    evaluate = LayerProbes.evaluate
    monkeypatch.setattr(LayerProbes, "evaluate", lambda self, *a, **k: evaluations.append(k) or evaluate(self, *a, **k))
    assert main(probe_command(features, tmp_path, "--seeds", "2")) == 0
    assert len(evaluations) == 2  # dev and test, once: the rows stand for both seeds
    provenance = json.loads((tmp_path / "sweep.json").read_text())["provenance"]
    assert "every seed gives the same probes" in provenance["seeds_linear"]
    assert all(row["mi_bits_seed_std"] == 0 for row in read_sweep_csv(tmp_path / "sweep.csv"))
