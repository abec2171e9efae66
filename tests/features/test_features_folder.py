"""The features folder: what it holds, reading rows without memory maps, and one error for every problem."""

import numpy as np
import pytest

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.features import npy_rows
from s3prl_mi_probe.features.folder import FeaturesFolder, write_features_folder
from s3prl_mi_probe.features.npy_rows import NpyRows


def small_folder(root, num_rows=12, **columns):
    rng = np.random.default_rng(0)
    layers = [
        rng.standard_normal((num_rows, 3)).astype(np.float16),
        rng.standard_normal((num_rows, 5)).astype(np.float32),
    ]
    splits = np.resize(["train", "train", "dev", "test"], num_rows)
    labels = np.resize(["b", "a", "c"], num_rows)
    return write_features_folder(root, layers, splits, labels, columns, meta={"upstream": "mine"}), layers


def test_a_folder_reads_back_its_layers_rows_and_columns(tmp_path):
    root, layers = small_folder(tmp_path, group=[f"spk{k % 3}" for k in range(12)])
    folder = FeaturesFolder(root)
    assert folder.num_layers == 2 and folder.layer_dims == [3, 5] and folder.num_rows == 12
    assert list(folder.columns) == ["split", "label", "group"] and folder.meta == {"upstream": "mine"}
    assert list(folder.columns["label"].values) == ["a", "b", "c"]
    assert list(folder.columns["label"].strings(folder.rows_of("test"))) == ["b", "a", "c"]
    assert list(folder.rows_of("dev")) == [2, 6, 10] and folder.has_split("dev")
    np.testing.assert_array_equal(folder.layers[0].read([5, 1, 1, 11]), layers[0][[5, 1, 1, 11]])
    with pytest.raises(KeyError, match="has no column 'speaker'; it has split, label, group"):
        folder.column("speaker")


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_rows_read_in_any_order_equal_the_array(tmp_path, dtype, monkeypatch):
    array = np.random.default_rng(1).standard_normal((500, 7)).astype(dtype)
    np.save(tmp_path / "a.npy", array)
    reader = NpyRows(tmp_path / "a.npy")
    rows = np.random.default_rng(2).choice(500, size=300)  # repeats, unsorted, dense and sparse runs
    np.testing.assert_array_equal(reader.read(rows), array[rows])
    np.testing.assert_array_equal(reader.read(slice(17, 230)), array[17:230])
    monkeypatch.setattr(npy_rows, "MAX_RUN_BYTES", 64)  # runs split into reads of a few rows
    np.testing.assert_array_equal(reader.read(np.sort(rows)), array[np.sort(rows)])
    out = np.empty((3, 7), dtype=dtype)
    assert reader.read([4, 2, 499], out=out) is out and np.array_equal(out, array[[4, 2, 499]])


def test_every_problem_of_a_bad_folder_is_listed_at_once(tmp_path):
    root, _ = small_folder(tmp_path, num_rows=12)
    (root / "layer_001.npy").rename(root / "layer_002.npy")  # a gap: layer 1 is missing
    np.save(root / "layer_003.npy", np.zeros((11, 4), dtype=np.float32))  # one row short
    bad_values = np.zeros((12, 2), dtype=np.float32)
    bad_values[4, 1], bad_values[7, 0] = np.nan, np.inf
    np.save(root / "layer_004.npy", bad_values)
    np.save(root / "layer_005.npy", np.zeros((12, 2), dtype=np.int64))
    lines = (root / "rows.tsv").read_text().splitlines()
    lines = [line.replace("test", "testing") for line in lines]  # unknown split, and no test rows left
    lines[3] = "train\t"  # an empty label
    lines[5] = "train\ta\textra"  # a field too many
    (root / "rows.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ProblemsFound) as caught:
        FeaturesFolder(root)
    message = str(caught.value)
    for expected in (
        "missing layer file(s) layer_001.npy",
        "layer_003.npy: 11 rows, but rows.tsv has 12",
        "layer_004.npy: NaN or infinite values (rows.tsv lines) on 2 line(s): 6, 9",
        "layer_005.npy: dtype int64, expected float16 or float32",
        "unknown split 'testing' (use train, dev or test) on 3 line(s): 5, 9, 13",
        "split 'test' has no rows",
        "empty label on 1 line(s): 4",
        "number of fields differs from the header's 2 on 1 line(s): 6",
    ):
        assert expected in message, message


def test_a_folder_without_rows_tsv_or_layers_says_what_it_needs(tmp_path):
    with pytest.raises(ProblemsFound) as caught:
        FeaturesFolder(tmp_path)
    assert "no layer files (layer_000.npy" in str(caught.value) and "no rows.tsv (header split<TAB>label" in str(
        caught.value
    )
    (tmp_path / "rows.tsv").write_text("split\tclass\nsplit\n")
    with pytest.raises(ProblemsFound, match=r"rows.tsv: header \['split', 'class'\]: missing column\(s\) label"):
        FeaturesFolder(tmp_path)


def test_probe_on_a_bad_folder_writes_nothing(tmp_path):
    root, _ = small_folder(tmp_path / "features")
    (root / "layer_000.npy").unlink()
    message = main(["probe", str(root), "--out", str(tmp_path / "out")])
    assert (
        message.startswith("s3prl-mi-probe probe: 1 problem(s) found in features folder")
        and "missing layer file(s) layer_000.npy" in message
    )
    assert not (tmp_path / "out").exists()
