"""What other tools read, from folders made here by the real sweep, probe and benchmark commands:
compare takes every one of them, pandas loads sweep.csv and leaderboard.csv in one line."""

import csv
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.features.folder import write_features_folder
from s3prl_mi_probe.metrics.columns import SWEEP_COLUMNS, TEXT_COLUMNS
from s3prl_mi_probe.sweep import FINISHED_ROWS_FOLDER


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, tone_manifest):
    """A fbank sweep, a probe of its cache (mlp1), a probe of other features and a one-cell benchmark."""
    root = tmp_path_factory.mktemp("outputs")
    sweep = root / "sweep"
    common = ["--manifest", str(tone_manifest), "--task", "phone", "--min-count", "2"]
    assert main(["sweep", "--upstream", "fbank", *common, "--out", str(sweep)]) == 0
    [cache] = [entry for entry in (sweep / "cache").iterdir() if entry.name != FINISHED_ROWS_FOLDER]
    assert main(["probe", str(cache), "--out", str(root / "probe"), "--probe", "mlp1", "--mlp-width", "8"]) == 0

    rng = np.random.default_rng(0)
    labels = rng.integers(3, size=300)
    layers = [(rng.standard_normal((300, 4)) + labels[:, None]).astype(np.float32) for _ in range(2)]
    splits = np.array(["train", "dev", "test"])[np.arange(300) % 5 // 2]
    custom = write_features_folder(root / "features", layers, splits, [f"c{label}" for label in labels])
    assert main(["probe", str(custom), "--out", str(root / "custom")]) == 0

    protocol = root / "tones-v1.yaml"
    protocol.write_text(
        "protocol: tones-v1\nformat: 1\ndescription: tones\n"
        f"corpora:\n  tones:\n    manifest: {tone_manifest}\n    prepare: write_tone_corpus\n"
        "tasks:\n  phone:\n    corpus: tones\n    min_count: 2\nprobes: [linear]\nseeds: 1\nseed: 0\n"
    )
    benchmark = root / "benchmark"
    assert main(["benchmark", "--protocol", str(protocol), "--upstream", "fbank", "--out", str(benchmark)]) == 0
    return {"sweep": sweep, "probe": root / "probe", "custom": root / "custom", "benchmark": benchmark}


def compare(*folders, out):
    command = [sys.executable, "-m", "s3prl_mi_probe", "compare", *map(str, folders), "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_sweep_probe_and_benchmark_folders_compare_side_by_side(outputs, tmp_path):
    result = compare(outputs["sweep"], outputs["probe"], outputs["benchmark"], outputs["custom"], out=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "compare.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert {(row["task"], row["probe"]) for row in rows} == {
        ("phone", "linear"),
        ("phone", "mlp1"),
        ("custom", "linear"),
    }
    # fbank is in three inputs of the phone task: each is named after the folder given on the command line.
    for label in ("fbank (sweep)", "fbank (probe)", "fbank (benchmark)", "features"):
        assert f"{label}:mi_bits" in rows[0], list(rows[0])
    phone = [row for row in rows if row["task"] == "phone" and row["probe"] == "linear"]
    assert float(phone[0]["fbank (sweep):mi_bits"]) == pytest.approx(float(phone[0]["fbank (benchmark):mi_bits"]))


def test_a_probe_folder_alone_is_a_valid_input(outputs, tmp_path):
    result = compare(outputs["probe"], out=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| phone | fbank |" in (tmp_path / "compare.md").read_text()


def test_a_probe_of_other_features_under_the_same_task_is_refused_in_one_line(outputs, tmp_path):
    features = outputs["custom"].parent / "features"
    assert main(["probe", str(features), "--out", str(tmp_path / "other"), "--task-label", "phone"]) == 0
    result = compare(outputs["sweep"], tmp_path / "other", out=tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "these sweeps are not comparable: phone task: manifest sha256 differs" in line, line
    assert "rows.tsv sha256 differs" in line and "classes differs" in line
    assert not (tmp_path / "out").exists()


def test_a_folder_that_no_command_wrote_is_named_in_one_line(outputs, tmp_path):
    result = compare(outputs["sweep"], outputs["sweep"] / "plots", out=tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert (
        line.startswith("s3prl-mi-probe compare: ") and "is not a folder that sweep, probe or benchmark wrote" in line
    )
    assert not (tmp_path / "out").exists()


def test_sweep_csv_loads_in_one_line_of_pandas_with_the_documented_dtypes(outputs):
    rows = pd.read_csv(outputs["sweep"] / "sweep.csv")
    assert tuple(rows.columns) == SWEEP_COLUMNS and len(rows) == 2  # fbank's one layer on dev and test
    assert all(pd.api.types.is_string_dtype(rows[column]) for column in TEXT_COLUMNS)
    integers = ("layer", "num_segments", "num_classes", "num_seeds", "num_train_segments")
    assert all(rows[column].dtype == "int64" for column in integers), rows.dtypes
    floats = [column for column in SWEEP_COLUMNS if column not in (*TEXT_COLUMNS, *integers)]
    assert all(rows[column].dtype == "float64" for column in floats), rows.dtypes
    # Columns of analyses not asked for are empty: NaN (hard_margin_segments too, an integer column).
    assert rows[["selectivity", "mdl_bits", "hard_margin", "hard_margin_segments"]].isna().all().all()
    test = rows.query("split == 'test'").pivot_table(index="layer", columns="upstream", values="mi_bits")
    assert test.loc[0, "fbank"] > 2.0


def test_leaderboard_csv_loads_in_one_line_of_pandas(outputs):
    board = pd.read_csv(outputs["benchmark"] / "leaderboard.csv")
    cells = board.query("task != 'overall'")
    assert list(cells[["task", "upstream", "rank", "best_layer"]].itertuples(index=False, name=None)) == [
        ("phone", "fbank", 1, 0)
    ]
    assert cells["mi_bits"].dtype == "float64" and board["rank"].dtype == "int64"
