"""The leaderboard from sweep rows: dev-chosen layers scored on test, ranks, overall, the written files."""

import csv
import json

import pytest

from s3prl_mi_probe.report.leaderboard import competition_ranks, leaderboard_entries, write_leaderboard
from s3prl_mi_probe.report.rows import write_sweep_csv

H_Y = {"word": 6.0, "phone": 4.0}


def sweep_rows(upstream, task, dev_bits, test_bits, probe="linear"):
    """Rows of one upstream × task × probe: per layer, the dev and test bounds given."""
    rows = []
    for layer, (dev, test) in enumerate(zip(dev_bits, test_bits)):
        for split, bits in (("dev", dev), ("test", test)):
            rows.append(
                {
                    "upstream": upstream,
                    "layer": layer,
                    "probe": probe,
                    "task": task,
                    "split": split,
                    "mi_bits": bits,
                    "h_y_bits": H_Y[task],
                    "ce_bits": H_Y[task] - bits,
                    "accuracy": bits / H_Y[task],
                    "mi_bits_ci_low": bits - 0.2,
                    "mi_bits_ci_high": bits + 0.2,
                    "margin_median": bits / 10,
                    "num_segments": 100 if split == "test" else 50,
                    "num_classes": 7,
                }
            )
    return rows


def cell(upstream, task, rows):
    record = {"upstream": upstream, "task": task, "checkpoint_sha256": f"sha-{upstream}", "probes": ["linear"]}
    provenance = {
        "segments": {"train": 1000, "dev": 50, "test": 100},
        "classes": ["a"] * 7,
        "task": {"task": task, "frames_per_utterance": None},
        "manifest_sha256": "m" * 64,
        "versions": {"s3prl": "0.4.18"},
    }
    return record, rows, provenance


@pytest.fixture
def cells():
    return [
        # Layer 1 is best on dev, layer 2 on test: the leaderboard must take layer 1 and its test value.
        cell("alpha", "word", sweep_rows("alpha", "word", [1.0, 3.0, 2.9], [1.1, 2.5, 2.8])),
        cell(
            "alpha",
            "phone",
            sweep_rows("alpha", "phone", [1.0, 2.0, 1.5], [1.0, 2.0, 1.4])
            + sweep_rows("alpha", "phone", [2.5, 2.2, 1.0], [2.4, 2.3, 1.1], probe="finetune"),
        ),
        cell("beta", "word", sweep_rows("beta", "word", [2.0, 2.4], [2.1, 2.5])),
        cell("beta", "phone", sweep_rows("beta", "phone", [3.0, 2.0], [3.0, 2.0])),
        cell("gamma", "word", sweep_rows("gamma", "word", [2.0, 2.5], [2.0, 2.4])),  # no phone cell yet
    ]


def test_competition_ranks_share_ties():
    assert competition_ranks([2.0, 3.0, 2.0, 1.0]) == [2, 1, 2, 4]


def test_entries_take_the_dev_layer_and_its_test_bound(cells):
    per_task, overall = leaderboard_entries(cells, ["word", "phone"], "linear")
    word = {entry["upstream"]: entry for entry in per_task["word"]}
    assert word["alpha"]["best_layer"] == 1 and word["alpha"]["mi_bits"] == 2.5
    assert word["alpha"]["last_layer_mi_bits"] == 2.8 and word["alpha"]["drop_bits"] == pytest.approx(-0.3)
    assert word["alpha"]["num_layers"] == 3 and word["alpha"]["mi_fraction"] == pytest.approx(2.5 / 6)
    # alpha (layer 1) and beta tie on test at 2.5: they share rank 1, gamma (2.4) is third.
    assert [(e["upstream"], e["rank"]) for e in per_task["word"]] == [("alpha", 1), ("beta", 1), ("gamma", 3)]
    phone = {entry["upstream"]: entry for entry in per_task["phone"]}
    assert phone["alpha"]["finetune_layer"] == 0 and phone["alpha"]["finetune_mi_bits"] == 2.4
    assert phone["beta"]["finetune_mi_bits"] is None
    assert [(e["upstream"], e["rank"]) for e in per_task["phone"]] == [("beta", 1), ("alpha", 2)]
    # Overall: only upstreams with every task; mean of mi / H(Y).
    assert [e["upstream"] for e in overall] == ["beta", "alpha"]
    assert overall[0]["mi_fraction"] == pytest.approx((2.5 / 6 + 3.0 / 4) / 2)
    assert overall[1]["rank"] == 2


def test_written_leaderboard_is_consistent(tmp_path, cells):
    finished = []
    cells[-1][0]["checkpoint_sha256"] = None  # gamma: an upstream without a checkpoint file (fbank, say)
    for record, rows, provenance in cells:
        folder = tmp_path / "runs" / record["upstream"] / record["task"]
        folder.mkdir(parents=True)
        write_sweep_csv(folder / "sweep.csv", rows)
        (folder / "sweep.json").write_text(json.dumps({"rows": rows, "provenance": provenance}))
        finished.append((record, folder))
    context = {
        "protocol": "toy-v1",
        "protocol_sha256": "f" * 64,
        "description": "A toy protocol.",
        "tasks": ["word", "phone"],
        "primary_probe": "linear",
        "sample_units": {"word": "segments", "phone": "segments"},
    }
    outputs = write_leaderboard(tmp_path, finished, context)
    with open(outputs["csv"]) as stream:
        table = list(csv.DictReader(stream))
    keyed = {(row["task"], row["upstream"]): row for row in table}
    assert float(keyed[("word", "alpha")]["mi_bits"]) == 2.5 and keyed[("word", "alpha")]["best_layer"] == "1"
    assert keyed[("phone", "beta")]["finetune_mi_bits"] == ""
    assert keyed[("overall", "beta")]["rank"] == "1" and ("overall", "gamma") not in keyed
    markdown = outputs["markdown"].read_text()
    assert "**Ranking rule.**" in markdown and "on **dev**" in markdown
    assert "| 1 | beta | 0.417 | 0.750 | **0.583** |" in markdown
    assert "2.400 (L0)" in markdown
    runs = markdown.split("## Runs", 1)[1]
    assert "| alpha | sha-alpha | word, phone | linear |" in runs
    assert "| gamma | none (no checkpoint file) | word | linear |" in runs
    html = outputs["html"].read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table>" in html
