"""``-d mi_probe`` under s3prl's DDP: two torchrun processes, gloo, CPU (see ddp_worker.py).

Training shards the batches and keeps the standardiser's statistics equal on both ranks; rank 0
evaluates the whole split during training; ``-m evaluate`` gives each rank a share and rank 0 reports
the whole split, equal to rank 0's lone evaluation of the same checkpoint, every segment once.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from s3prl_runner import metrics_rows, short_run_overrides

from s3prl_mi_probe.runner.shipped_configs import config_path

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tone_manifest):
    root = tmp_path_factory.mktemp("ddp")
    (root / "ranks").mkdir()
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *(str(WORKER), str(root / "ranks"), "-m", "train", "-u", "fbank", "-d", "mi_probe"),
        *("-p", str(root / "exp"), "-c", str(config_path("phone"))),
        *("-o", short_run_overrides(tone_manifest, steps=8, eval_step=4)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-6000:]
    ranks = [json.loads((root / "ranks" / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    return root / "exp", ranks


def test_training_batches_are_sharded_and_statistics_agree(ddp_run):
    _, ranks = ddp_run
    assert all(rank["ddp_wrapped"] for rank in ranks)
    segments = ranks[0]["train_segments"]
    epochs = list(zip(ranks[0]["train_items"], ranks[1]["train_items"]))
    assert len(epochs) == 4  # 8 steps of 2 batches of 4 utterances per rank; 15 training utterances
    for shares in epochs:
        assert len(shares[0]) == len(shares[1]) == 8
        # Each epoch the shares cover the split; DistributedSampler repeats one item to even them out.
        assert set(shares[0] + shares[1]) == set(range(15))
    assert epochs[0][0] != epochs[1][0]  # reshuffled every epoch
    # Every rank standardises with the statistics of both ranks' batches.
    assert ranks[0]["standardizer"] == ranks[1]["standardizer"]
    seen = sum(segments[item] for shares in epochs for share in shares for item in share)
    assert ranks[0]["standardizer"]["count"] == seen


def test_training_evaluations_cover_each_split_once_on_rank_0(ddp_run):
    expdir, ranks = ddp_run
    rows = metrics_rows(expdir)
    assert sorted((row["step"], row["split"]) for row in rows) == [(4, "dev"), (4, "test"), (8, "dev"), (8, "test")]
    assert all(row["num_segments"] == ranks[0]["segments"][row["split"]] for row in rows)


def test_evaluate_shards_and_reports_the_whole_split_like_a_lone_process(ddp_run):
    expdir, ranks = ddp_run
    # Contiguous shares without padding, in split order.
    assert ranks[0]["test_items"] + ranks[1]["test_items"] == list(range(ranks[0]["test_utterances"]))
    assert ranks[0]["test_items"] and ranks[1]["test_items"]
    [row] = json.loads((expdir / "evaluate-test.json").read_text())["rows"]
    assert row["num_segments"] == ranks[0]["segments"]["test"]
    # Rank 0 evaluated the same checkpoint alone, on the whole split, when it saved it.
    [alone] = [other for other in metrics_rows(expdir) if other["split"] == "test" and other["step"] == row["step"]]
    assert row.keys() == alone.keys()
    for name, value in row.items():
        assert value == (pytest.approx(alone[name], rel=1e-6) if isinstance(value, float) else alone[name]), name
