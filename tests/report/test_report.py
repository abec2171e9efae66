"""Reports from sweep rows: CSV round trip, best layers, plots, TensorBoard events, multi-sweep comparison."""

import csv
import math
from dataclasses import asdict

import matplotlib.image
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from s3prl_mi_probe.common.atomic import write_json_atomic
from s3prl_mi_probe.common.folder_names import run_folder_name
from s3prl_mi_probe.corpus.task import TaskOptions
from s3prl_mi_probe.corpus.task_kinds import DEFAULT_SILENCE_LABELS
from s3prl_mi_probe.metrics.columns import METRIC_COLUMNS, SWEEP_COLUMNS, TRAINING_COLUMNS
from s3prl_mi_probe.report.compare import COMPARED_METRICS, compare_sweeps
from s3prl_mi_probe.report.notes import NEGATIVE_BOUND_NOTE
from s3prl_mi_probe.report.plots import layer_curve_figure, plot_layer_curves, plot_sweep
from s3prl_mi_probe.report.rows import best_layers, read_sweep_csv, write_sweep_csv
from s3prl_mi_probe.report.tensorboard import write_sweep_events

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
H_Y = {"phone": 5.123456789012345, "word": 7.654321098765432}


def fake_rows(upstream, num_layers, peak_layer, peak_bits, tasks=("phone",), dev_peak_layer=None):
    """Rows for one upstream whose mi_bits rises to ``peak_bits`` at ``peak_layer`` then falls (dev: at
    ``dev_peak_layer``, default the same layer)."""
    rows = []
    peaks = {"dev": peak_layer if dev_peak_layer is None else dev_peak_layer, "test": peak_layer}
    for task in tasks:
        for layer in range(num_layers):
            for split, offset in (("dev", 0.05), ("test", 0.0)):
                mi = peak_bits * math.exp(-(((layer - peaks[split]) / 3.0) ** 2)) + offset
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
                        "num_train_segments": 5000,
                        "hard_margin_segments": None,
                        "l2": 1e-3,
                        "fit": "converged",
                        "best_epoch": 3.5,
                        "epochs_run": 7.5,
                        "train_passes": 12.5,
                    }
                )
    return rows


def fake_provenance(task, **changes):
    """What a sweep.json records of its task: the manifest's sha256, the task options and the classes."""
    options = {**asdict(TaskOptions(task=task)), "silence_labels": list(DEFAULT_SILENCE_LABELS)}
    return {
        "manifest_sha256": changes.pop("manifest_sha256", "ab" * 32),
        "task": {**options, **{k: v for k, v in changes.items() if k != "classes"}},
        "classes": changes.get("classes", [f"c{index}" for index in range(39)]),
    }


def write_sweep(folder, rows, provenance=None):
    folder.mkdir(parents=True)
    write_sweep_csv(folder / "sweep.csv", rows)
    provenance = provenance or fake_provenance(rows[0]["task"])
    write_json_atomic(folder / "sweep.json", {"rows": rows, "provenance": provenance})
    return folder


@pytest.fixture
def sweeps(tmp_path):
    """Four sweep folders of one task each; the label "hubert" appears in two phone folders."""
    return {
        "base": write_sweep(tmp_path / "base", fake_rows("hubert", 13, 9, 3.1) + fake_rows("fbank", 1, 0, 1.2)),
        "word": write_sweep(
            tmp_path / "word", fake_rows("hubert", 13, 9, 4.0, ("word",)) + fake_rows("fbank", 1, 0, 2.0, ("word",))
        ),
        "rerun": write_sweep(tmp_path / "rerun", fake_rows("hubert", 13, 8, 3.3)),
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


def test_a_sweep_csv_from_before_the_training_columns_reads_with_them_empty(tmp_path):
    rows = fake_rows("hubert", 2, 1, 1.0)
    write_sweep_csv(tmp_path / "sweep.csv", rows)
    earlier = SWEEP_COLUMNS[: -len(TRAINING_COLUMNS)]
    lines = [",".join(line.split(",")[: len(earlier)]) for line in (tmp_path / "sweep.csv").read_text().splitlines()]
    (tmp_path / "sweep.csv").write_text("\n".join(lines) + "\n")
    back = read_sweep_csv(tmp_path / "sweep.csv")
    assert back == [{**row, **dict.fromkeys(TRAINING_COLUMNS)} for row in rows]


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
        row["accuracy"] = 0.5 if row["layer"] in (1, 3) and row["split"] == "dev" else 0.4
    assert best_layers(tied, metric="accuracy")[("flat", "phone", "linear")]["layer"] == 1


def test_best_layers_choose_on_dev_and_report_test_where_the_two_disagree():
    rows = fake_rows("hubert", 13, 9, 3.1, dev_peak_layer=4)
    test_rows = {row["layer"]: row for row in rows if row["split"] == "test"}
    assert max(test_rows.values(), key=lambda row: row["mi_bits"])["layer"] == 9  # test alone would pick 9
    best = best_layers(rows)[("hubert", "phone", "linear")]
    assert best is test_rows[4]  # dev picks layer 4; its test row is reported
    assert best_layers(rows, report_split="dev")[("hubert", "phone", "linear")]["split"] == "dev"
    no_dev = [row for row in rows if row["split"] == "test"]
    assert best_layers(no_dev) == {}  # no dev rows: nothing to choose on, rather than choosing on test


def test_plot_stars_mark_the_layer_chosen_on_dev():
    rows = fake_rows("hubert", 13, 9, 3.1, dev_peak_layer=4)
    axes = layer_curve_figure(rows, "mi_bits").axes[0]
    test_at_4 = next(row for row in rows if (row["split"], row["layer"]) == ("test", 4))["mi_bits"]
    [star] = [line for line in axes.get_lines() if line.get_marker() == "*"]
    assert list(star.get_xdata()) == [4] and list(star.get_ydata()) == [test_at_4]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert f"hubert · linear (best: L4, {test_at_4:.3g})" in labels
    assert "chosen on dev" in axes.get_title()


def test_plots_are_valid_pngs(tmp_path):
    rows = fake_rows("hubert", 13, 9, 3.1) + fake_rows("fbank", 1, 0, 1.2)
    paths = plot_sweep(rows, tmp_path / "plots")
    assert sorted(path.name for path in paths.values()) == ["accuracy.png", "margin.png", "mi_bits.png"]
    for path in paths.values():
        assert_png(path)
    with pytest.raises(ValueError, match="no 'train' rows"):
        plot_layer_curves(rows, "mi_bits", tmp_path / "none.png", split="train")


def test_plots_of_single_layer_upstreams_are_readable():
    rows = fake_rows("fbank", 1, 0, 1.2) + fake_rows("mfcc", 1, 0, 1.25) + fake_rows("a long upstream name", 1, 0, 1.1)
    figure = layer_curve_figure(rows, "mi_bits", title="phone: " + "a title long enough to need two lines " * 2)
    axes = figure.axes[0]
    assert list(axes.get_xticks()) == [0]  # one layer is one tick, not a range of fractions
    assert not axes.texts[1:]  # no per-point labels to overlap: the best layer is named in the legend
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "fbank · linear (best: L0, 1.2)" in labels
    xs = [line.get_xdata()[0] for line in axes.get_lines() if line.get_marker() == "*"]
    assert len(set(xs)) == 3 and max(xs) - min(xs) < 0.5  # the three points sit side by side around layer 0
    assert len(axes.collections) >= 3  # their 95 % intervals as error bars
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    frame = figure.bbox
    for artist in (figure._suptitle, axes.title, axes.get_legend()):
        box = artist.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, artist


def test_tensorboard_events_have_expected_tags(tmp_path):
    rows = fake_rows("hubert_local:tiny_hubert", 3, 1, 0.7, ("phone", "word")) + fake_rows("hubert", 4, 2, 2.0)
    rows = [{**row, "hard_margin": math.nan} for row in rows]  # no layer separable
    folders = write_sweep_events(rows, tmp_path / "tb")
    assert run_folder_name("hubert_local:tiny_hubert") == "hubert_local_tiny_hubert"
    run = tmp_path / "tb" / "hubert_local_tiny_hubert" / "phone" / "linear"
    assert folders["hubert_local:tiny_hubert", "phone", "linear"] == run
    assert len(folders) == 3  # tiny_hubert's two tasks, hubert's one

    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    # s3prl's tag style, <downstream>/<split>-<metric>, the layer as the step.
    assert "mi_probe/test-mi_bits" in tags and "mi_probe/dev-margin_positive_frac" in tags
    # Every metric column with a value, per split; empty and NaN columns are skipped.
    valued = [column for column in METRIC_COLUMNS if rows[0][column] is not None and not math.isnan(rows[0][column])]
    assert len(tags) == 2 * len(valued)
    assert "mi_probe/test-selectivity" in tags and "mi_probe/test-hard_margin" not in tags
    mi = events.Scalars("mi_probe/test-mi_bits")
    assert [event.step for event in mi] == [0, 1, 2]
    expected = [
        row["mi_bits"]
        for row in rows
        if row["upstream"] == "hubert_local:tiny_hubert" and row["task"] == "phone" and row["split"] == "test"
    ]
    assert [event.value for event in mi] == pytest.approx(expected, rel=1e-6)


def test_compare_writes_side_by_side_report(sweeps, tmp_path):
    out = tmp_path / "compare"
    result = compare_sweeps([sweeps["base"], sweeps["word"], sweeps["rerun"], sweeps["local"]], out)

    assert result["csv"] == out / "compare.csv" and result["markdown"] == out / "compare.md"
    assert sorted(result["plots"]) == ["phone", "word"]
    for task in ("phone", "word"):
        for stem in ("mi_bits", "accuracy", "margin"):
            assert_png(out / "plots" / f"{task}_{stem}.png")

    with open(result["csv"], newline="") as stream:
        wide = list(csv.DictReader(stream))
    # "hubert" is in two phone folders (renamed there), in one word folder (kept); fbank likewise.
    upstreams = ["hubert (base)", "fbank", "hubert", "hubert (rerun)", "hubert_local:tiny_hubert"]
    metrics = list(COMPARED_METRICS)  # the bound and accuracy with their intervals, margin, selectivity
    assert {"mi_bits_ci_low", "mi_bits_ci_high", "accuracy_ci_high", "selectivity"} <= set(metrics)
    assert list(wide[0]) == ["task", "probe", "layer"] + [f"{u}:{m}" for u in upstreams for m in metrics]
    assert len(wide) == 13 + 13
    phone_layer_9 = next(line for line in wide if (line["task"], line["layer"]) == ("phone", "9"))
    base_test = {
        row["layer"]: row
        for row in read_sweep_csv(sweeps["base"] / "sweep.csv")
        if (row["upstream"], row["task"], row["split"]) == ("hubert", "phone", "test")
    }
    for metric in ("mi_bits", "mi_bits_ci_low", "mi_bits_ci_high", "margin_median", "selectivity"):
        assert float(phone_layer_9[f"hubert (base):{metric}"]) == base_test[9][metric]
    assert phone_layer_9["fbank:mi_bits"] == "" and phone_layer_9["hubert_local:tiny_hubert:accuracy"] == ""
    assert phone_layer_9["hubert:mi_bits"] == ""  # the word sweep's hubert has no phone rows

    markdown = result["markdown"].read_text()
    for upstream in upstreams:
        assert upstream in markdown
    best = {  # the best-layer table: upstream | probe | best layer | ...
        cells[0]: cells
        for cells in ([cell.strip() for cell in line.strip("| ").split("|")] for line in markdown.splitlines())
        if cells[1:2] == ["linear"]
    }
    assert best["hubert (base)"][2] == "9" and best["hubert (rerun)"][2] == "8"
    top = base_test[9]
    interval = f"{top['mi_bits']:.3f} [{top['mi_bits_ci_low']:.3f}, {top['mi_bits_ci_high']:.3f}]"
    assert f"| 9 | {interval} |" in markdown  # the layer table: bound and 95 % interval per cell
    assert "![phone mi_bits](plots/phone_mi_bits.png)" in markdown
    assert f"{H_Y['phone']:.3f}" in markdown and "```" not in markdown


def test_compare_chooses_the_best_layer_on_dev_and_says_so(tmp_path):
    rows = fake_rows("hubert", 13, 9, 3.1, dev_peak_layer=4) + fake_rows("fbank", 1, 0, 1.2)
    result = compare_sweeps([write_sweep(tmp_path / "sweep", rows)], tmp_path / "compare")
    markdown = result["markdown"].read_text()
    heading = next(line for line in markdown.splitlines() if line.startswith("### Best layer per upstream"))
    assert "chosen on dev" in heading and "its test numbers" in heading
    table = markdown.split(heading, 1)[1].split("###", 1)[0]
    [hubert] = [line for line in table.splitlines() if line.startswith("| hubert |")]
    test_at_4 = next(row for row in rows if (row["upstream"], row["split"], row["layer"]) == ("hubert", "test", 4))
    assert hubert.startswith(f"| hubert | linear | 4 | {test_at_4['mi_bits']:.3f} [")


def test_compare_explains_negative_bounds(tmp_path, sweeps):
    assert NEGATIVE_BOUND_NOTE not in compare_sweeps([sweeps["local"]], tmp_path / "positive")["markdown"].read_text()
    rows = fake_rows("hubert", 3, 1, 0.5)
    for row in rows:
        row["mi_bits"] -= 1.0
    out = compare_sweeps([write_sweep(tmp_path / "negative", rows)], tmp_path / "out")
    assert NEGATIVE_BOUND_NOTE in out["markdown"].read_text()
    assert "Why a bound can be negative" in NEGATIVE_BOUND_NOTE


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"manifest_sha256": "cd" * 32}, "manifest sha256 differs"),
        ({"min_count": 2}, "min_count differs"),
        ({"fold_stress": False}, "fold_stress differs"),
        ({"classes": ["x", "y"]}, "classes differs"),
    ],
)
def test_compare_refuses_sweeps_of_different_setups(tmp_path, sweeps, change, expected):
    other = write_sweep(tmp_path / "other", fake_rows("wavlm", 13, 7, 3.0), fake_provenance("phone", **change))
    with pytest.raises(ValueError, match="not comparable") as error:
        compare_sweeps([sweeps["base"], other], tmp_path / "out")
    assert expected in str(error.value) and str(other) in str(error.value) and str(sweeps["base"]) in str(error.value)
    assert not (tmp_path / "out").exists()


def test_compare_accepts_another_seed_of_the_same_setup(tmp_path, sweeps):
    other = write_sweep(tmp_path / "seed1", fake_rows("wavlm", 13, 7, 3.0), fake_provenance("phone", seed=1))
    assert compare_sweeps([sweeps["base"], other], tmp_path / "out")["csv"].is_file()


def test_compare_replaces_the_plots_of_an_earlier_comparison(tmp_path, sweeps):
    out = tmp_path / "out"
    compare_sweeps([sweeps["base"], sweeps["word"]], out)
    compare_sweeps([sweeps["base"]], out)
    assert sorted(path.name for path in (out / "plots").iterdir()) == [
        "phone_accuracy.png",
        "phone_margin.png",
        "phone_mi_bits.png",
    ]


def test_compare_missing_sweep_names_folder(sweeps, tmp_path):
    empty = tmp_path / "not_a_sweep"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not_a_sweep"):
        compare_sweeps([sweeps["base"], empty], tmp_path / "out")


def test_compare_wrong_header_names_folder(sweeps, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sweep.csv").write_text("upstream,layer,accuracy\n")
    write_json_atomic(broken / "sweep.json", {"provenance": fake_provenance("phone")})
    with pytest.raises(ValueError, match="broken"):
        compare_sweeps([sweeps["base"], broken], tmp_path / "out")
