"""Reports from sweep rows: CSV round trip, best layers, plots, TensorBoard events, multi-sweep comparison."""

import csv
import math

import matplotlib.image
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from s3prl_mi_probe.metrics.columns import METRIC_COLUMNS, SWEEP_COLUMNS
from s3prl_mi_probe.report.compare import compare_sweeps
from s3prl_mi_probe.report.plots import plot_layer_curves, plot_sweep
from s3prl_mi_probe.report.rows import best_layers, read_sweep_csv, write_sweep_csv
from s3prl_mi_probe.report.tensorboard import run_folder_name, write_sweep_events

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
H_Y = {"phone": 5.123456789012345, "word": 7.654321098765432}


def fake_rows(upstream, num_layers, peak_layer, peak_bits, tasks=("phone",)):
    """Rows for one upstream whose mi_bits rises to ``peak_bits`` at ``peak_layer`` then falls (test split)."""
    rows = []
    for task in tasks:
        for layer in range(num_layers):
            for split, offset in (("dev", 0.05), ("test", 0.0)):
                mi = peak_bits * math.exp(-(((layer - peak_layer) / 3.0) ** 2)) + offset
                accuracy = min(0.99, 0.1 + mi / H_Y[task])
                rows.append(
                    {
                        "upstream": upstream,
                        "layer": layer,
                        "probe": "linear",
                        "task": task,
                        "split": split,
                        "mi_bits": mi,
                        "h_y_bits": H_Y[task],
                        "h_y_mm_bits": H_Y[task] + 0.01,
                        "ce_bits": H_Y[task] - mi,
                        "accuracy": accuracy,
                        "mi_bits_ci_low": mi - 0.1,
                        "mi_bits_ci_high": mi + 0.125,
                        "accuracy_ci_low": accuracy - 0.01,
                        "accuracy_ci_high": accuracy + 0.01,
                        "margin_median": 0.3 * mi - 0.2,
                        "margin_p10": 0.1 * mi - 0.5,
                        "margin_min": -1.0 / 3.0,
                        "margin_positive_frac": mi / 6.0,
                        "num_segments": 1234,
                        "num_classes": 39 if task == "phone" else 500,
                        "control_accuracy": 0.25,
                        "control_mi_bits": 0.0625,
                        "selectivity": accuracy - 0.25,
                        "mdl_bits": 1234.5 - layer,
                        "compression": 2.5,
                        "hard_margin": None,
                        "num_seeds": 1,
                        "mi_bits_seed_std": None,
                        "accuracy_seed_std": None,
                    }
                )
    return rows


def write_sweep(folder, rows):
    folder.mkdir(parents=True)
    write_sweep_csv(folder / "sweep.csv", rows)
    return folder


@pytest.fixture
def sweeps(tmp_path):
    """Three sweep folders; the label "hubert" appears in two of them."""
    return {
        "base": write_sweep(
            tmp_path / "base",
            fake_rows("hubert", 13, 9, 3.1, ("phone", "word")) + fake_rows("fbank", 1, 0, 1.2, ("phone", "word")),
        ),
        "rerun": write_sweep(tmp_path / "rerun", fake_rows("hubert", 13, 8, 3.3, ("phone", "word"))),
        "local": write_sweep(tmp_path / "local", fake_rows("hubert_local:tiny_hubert", 3, 1, 0.7)),
    }


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width >= 400 and height >= 300


def test_csv_round_trip_is_exact(tmp_path):
    rows = fake_rows("hubert_local:tiny_hubert", 4, 2, 2.5, ("phone", "word"))
    write_sweep_csv(tmp_path / "sweep.csv", rows)
    assert (tmp_path / "sweep.csv").read_text().splitlines()[0] == ",".join(SWEEP_COLUMNS)
    back = read_sweep_csv(tmp_path / "sweep.csv")
    assert back == rows
    assert all(type(back[0][key]) is type(rows[0][key]) for key in SWEEP_COLUMNS)
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_rejects_wrong_header(tmp_path):
    (tmp_path / "sweep.csv").write_text("upstream,layer\nhubert,0\n")
    with pytest.raises(ValueError, match="unexpected header"):
        read_sweep_csv(tmp_path / "sweep.csv")


def test_best_layers_picks_peak_and_lowest_on_ties():
    rows = fake_rows("hubert", 13, 9, 3.1) + fake_rows("fbank", 1, 0, 1.2)
    best = best_layers(rows)
    assert best[("hubert", "phone", "linear")]["layer"] == 9
    assert best[("fbank", "phone", "linear")]["layer"] == 0
    assert best[("hubert", "phone", "linear")]["split"] == "test"

    tied = fake_rows("flat", 5, 2, 1.0)
    for row in tied:
        row["accuracy"] = 0.5 if row["layer"] in (1, 3) else 0.4
    assert best_layers(tied, metric="accuracy")[("flat", "phone", "linear")]["layer"] == 1


def test_plots_are_valid_pngs(tmp_path):
    rows = fake_rows("hubert", 13, 9, 3.1) + fake_rows("fbank", 1, 0, 1.2)
    paths = plot_sweep(rows, tmp_path / "plots")
    assert sorted(path.name for path in paths.values()) == ["accuracy.png", "margin.png", "mi_bits.png"]
    for path in paths.values():
        assert_png(path)
    with pytest.raises(ValueError, match="no 'train' rows"):
        plot_layer_curves(rows, "mi_bits", tmp_path / "none.png", split="train")


def test_tensorboard_events_have_expected_tags(tmp_path):
    rows = fake_rows("hubert_local:tiny_hubert", 3, 1, 0.7, ("phone", "word")) + fake_rows("hubert", 4, 2, 2.0)
    rows = [{**row, "hard_margin": math.nan} for row in rows]  # no layer separable
    folders = write_sweep_events(rows, tmp_path / "tb")
    assert run_folder_name("hubert_local:tiny_hubert") == "hubert_local_tiny_hubert"
    assert folders["hubert_local:tiny_hubert"] == tmp_path / "tb" / "hubert_local_tiny_hubert"

    events = EventAccumulator(str(folders["hubert_local:tiny_hubert"]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert "phone/linear/test/mi_bits" in tags
    assert "word/linear/dev/margin_positive_frac" in tags
    # Every metric column with a value, per task and split; empty and NaN columns are skipped.
    valued = [column for column in METRIC_COLUMNS if rows[0][column] is not None and not math.isnan(rows[0][column])]
    assert len(tags) == 2 * 2 * len(valued)
    assert "phone/linear/test/selectivity" in tags and "phone/linear/test/hard_margin" not in tags
    mi = events.Scalars("phone/linear/test/mi_bits")
    assert [event.step for event in mi] == [0, 1, 2]
    expected = [
        row["mi_bits"]
        for row in rows
        if row["upstream"] == "hubert_local:tiny_hubert" and row["task"] == "phone" and row["split"] == "test"
    ]
    assert [event.value for event in mi] == pytest.approx(expected, rel=1e-6)


def test_compare_writes_side_by_side_report(sweeps, tmp_path):
    out = tmp_path / "compare"
    result = compare_sweeps([sweeps["base"], sweeps["rerun"], sweeps["local"]], out)

    assert result["csv"] == out / "compare.csv" and result["markdown"] == out / "compare.md"
    assert sorted(result["plots"]) == ["phone", "word"]
    for task in ("phone", "word"):
        for stem in ("mi_bits", "accuracy", "margin"):
            assert_png(out / "plots" / f"{task}_{stem}.png")

    with open(result["csv"], newline="") as stream:
        wide = list(csv.DictReader(stream))
    upstreams = ["hubert (base)", "fbank", "hubert (rerun)", "hubert_local:tiny_hubert"]
    metrics = ["mi_bits", "accuracy", "margin_median"]
    assert list(wide[0]) == ["task", "probe", "layer"] + [f"{u}:{m}" for u in upstreams for m in metrics]
    assert len(wide) == 13 + 13
    phone_layer_9 = next(line for line in wide if (line["task"], line["layer"]) == ("phone", "9"))
    base_test = {
        row["layer"]: row
        for row in read_sweep_csv(sweeps["base"] / "sweep.csv")
        if (row["upstream"], row["task"], row["split"]) == ("hubert", "phone", "test")
    }
    assert float(phone_layer_9["hubert (base):mi_bits"]) == base_test[9]["mi_bits"]
    assert float(phone_layer_9["hubert (base):margin_median"]) == base_test[9]["margin_median"]
    assert phone_layer_9["fbank:mi_bits"] == "" and phone_layer_9["hubert_local:tiny_hubert:accuracy"] == ""

    markdown = result["markdown"].read_text()
    for upstream in upstreams:
        assert upstream in markdown
    best_lines = {
        line.split()[0] + " " + line.split()[1]: line.split()
        for line in markdown.splitlines()
        if line.strip().startswith(("hubert (base)", "hubert (rerun)"))
    }
    assert best_lines["hubert (base)"][3] == "9" and best_lines["hubert (rerun)"][3] == "8"
    assert "![phone mi_bits](plots/phone_mi_bits.png)" in markdown
    assert f"{H_Y['phone']:.3f}" in markdown


def test_compare_missing_sweep_names_folder(sweeps, tmp_path):
    empty = tmp_path / "not_a_sweep"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not_a_sweep"):
        compare_sweeps([sweeps["base"], empty], tmp_path / "out")


def test_compare_wrong_header_names_folder(sweeps, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sweep.csv").write_text("upstream,layer,accuracy\n")
    with pytest.raises(ValueError, match="broken"):
        compare_sweeps([sweeps["base"], broken], tmp_path / "out")
