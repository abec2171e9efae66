"""SegmentProbes without s3prl: batches of hidden states in, a trained probe per layer and metric rows out."""

from collections import defaultdict

import numpy as np
import torch

from s3prl_mi_probe.corpus.control import UNSEEN
from s3prl_mi_probe.probe.kinds import build_probe_bank
from s3prl_mi_probe.probe.segment_probes import CONTROL_PREFIX, SegmentProbes
from s3prl_mi_probe.probe.standardize import RunningStandardizer

RATE, FRAMES, SEGMENTS, DIM, CLASSES = 160, 50, 5, 8, 3  # 100 frames/s: 0.5 s utterances of 0.1 s segments


def batch(rng, utterances=4, unseen_controls=False):
    """``(hidden [2, B, T, D], lengths [B], segments)``: layer 0 tells the class of each segment, layer 1 is noise."""
    labels = rng.integers(0, CLASSES, size=(utterances, SEGMENTS))
    hidden = rng.normal(size=(2, utterances, FRAMES, DIM))
    hidden[0, :, :, :CLASSES] += 4 * np.eye(CLASSES)[np.repeat(labels, FRAMES // SEGMENTS, axis=1)]
    starts = np.arange(SEGMENTS) * 0.1
    segments = []
    for utterance_labels in labels:
        controls = utterance_labels.copy()
        if unseen_controls:
            controls[0] = UNSEEN  # a key value never seen in train: not scored
        segments.append((starts, starts + 0.1, utterance_labels, controls))
    lengths = torch.full((utterances,), FRAMES)
    return torch.tensor(hidden, dtype=torch.float32), lengths, segments


def test_linear_probes_learn_the_informative_layer_and_skip_unscored_control_segments():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    probes = SegmentProbes(
        build_probe_bank("linear", 2, DIM, CLASSES),
        layer_ids=[0, 1],
        hidden_layers=[0, 1],
        num_classes=CLASSES,
        pooling="mean",
        downsample_rate=RATE,
        control_probe=build_probe_bank("linear", 2, DIM, CLASSES),
        standardizer=RunningStandardizer(2, DIM),
    )
    optimizer = torch.optim.Adam(probes.parameters(), lr=0.05)
    train_records = defaultdict(list)
    for _ in range(60):
        loss = probes.probe_batch("train", *batch(rng), train_records)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert probes.standardizer.count.item() == 60 * 4 * SEGMENTS  # every training segment, once
    first, last = (torch.stack(train_records["ce_bits"][k : k + 5]).mean(0) for k in (0, 55))
    assert last[0] < first[0]  # the informative layer's training CE went down

    probes.eval()
    records = defaultdict(list)
    with torch.no_grad():
        probes.probe_batch("dev", *batch(rng, utterances=8, unseen_controls=True), records)
    assert sorted(records) == sorted(probes.record_keys())
    heads = [{"split": "dev", "layer": layer} for layer in probes.layer_ids]
    rows = probes.rows(records, heads)
    assert [(row["split"], row["layer"]) for row in rows] == [("dev", 0), ("dev", 1)]
    assert rows[0]["accuracy"] > 0.9 and rows[1]["accuracy"] < 0.7
    assert rows[0]["num_segments"] == 8 * SEGMENTS
    control = probes.rows(records, heads, CONTROL_PREFIX)
    assert control[0]["num_segments"] == 8 * (SEGMENTS - 1)  # the unseen control segments are not scored
