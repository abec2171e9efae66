"""A features folder as the probe stage reads it: checked, its splits as row sources, its control labels."""

from pathlib import Path

import numpy as np

from s3prl_mi_probe.common.problems import unusable
from s3prl_mi_probe.corpus.control import UNSEEN, keyed_control_labels
from s3prl_mi_probe.corpus.manifest import SPLITS
from s3prl_mi_probe.features.cache import LayerCache
from s3prl_mi_probe.features.folder import REQUIRED_COLUMNS, ROWS_FILE, FeaturesFolder
from s3prl_mi_probe.probe.arrays import carve_dev
from s3prl_mi_probe.probe.source import RowSource
from s3prl_mi_probe.probe.subsample import stratified_subsample


def open_features_folder(root, progress=False):
    """The checked :class:`FeaturesFolder` at ``root``; an unfinished sweep cache is refused."""
    root = Path(root)
    if LayerCache.unfinished(root):
        raise unusable(root, "a sweep cache whose extraction did not finish: rerun the sweep")
    return FeaturesFolder(root, progress=progress)


def folder_splits(folder, settings):
    """``(sources, notes)``: RowSources of train, dev and test of ``folder``, and what was done to train.

    Without dev rows, dev is carved from train (whole groups when rows.tsv has a ``group`` column);
    then ``max_train_segments``/``max_per_class`` subsample train (seeded, class-stratified).
    """
    train = RowSource.from_folder(folder, "train")
    notes = {"dev_carved_from_train": not folder.has_split("dev")}
    if notes["dev_carved_from_train"]:
        carved = carve_dev(train.num_rows, train.groups, settings.seed)
        train, dev = train.subset(~carved), train.subset(carved)
    else:
        dev = RowSource.from_folder(folder, "dev")
    notes["train_segments_available"] = train.num_rows
    if settings.max_train_segments is not None or settings.max_per_class is not None:
        kept = stratified_subsample(train.labels, settings.max_train_segments, settings.max_per_class, settings.seed)
        train = train.subset(kept)
    notes.update(
        max_train_segments=settings.max_train_segments,
        max_per_class=settings.max_per_class,
        num_train_segments=train.num_rows,
    )
    return {"train": train, "dev": dev, "test": RowSource.from_folder(folder, "test")}, notes


def folder_control_labels(folder, key, seed=0):
    """One control label per row of ``folder`` (docs/method.md, "Control tasks").

    ``segment``: the labels of each split permuted across its rows; any other ``key`` names a rows.tsv
    column: every distinct value seen in train gets one label drawn from the train label distribution
    (seeded), as :func:`s3prl_mi_probe.corpus.control.control_labels` does for a manifest; dev and
    test rows whose value never occurs in train are :data:`~s3prl_mi_probe.corpus.control.UNSEEN`.
    """
    labels = folder.columns["label"].codes
    rng = np.random.default_rng(seed)
    present = [split for split in SPLITS if folder.has_split(split)]
    if key == "segment":
        controls = labels.astype(np.int64)
        for split in present:
            rows = folder.rows_of(split)
            controls[rows] = rng.permutation(labels[rows])
        return controls
    if key in REQUIRED_COLUMNS or key not in folder.columns:
        choices = ", ".join(["segment", *(name for name in folder.columns if name not in REQUIRED_COLUMNS)])
        raise ValueError(
            f"control key {key!r} is not a control column of {folder.root / ROWS_FILE}; choose among {choices}"
        )
    column = folder.columns[key]
    if column.values.size and column.values[0] == "":
        empty = np.flatnonzero(column.codes == 0)
        raise ValueError(
            f"control key {key!r}: {empty.size} row(s) have no value, e.g. rows.tsv lines {list(empty[:5] + 2)}"
        )
    train_counts = np.bincount(labels[folder.rows_of("train")], minlength=folder.columns["label"].values.size)
    keys = {split: column.codes[folder.rows_of(split)] for split in present}
    per_split = keyed_control_labels(keys, train_counts, rng, key)
    controls = np.full(folder.num_rows, UNSEEN, dtype=np.int64)
    for split, split_controls in per_split.items():
        controls[folder.rows_of(split)] = split_controls
    return controls
