"""The probe stage on a features folder: every probe kind, seeds, a control task, MDL and the hard margin.

Shared by ``sweep`` (on its own cache, which is a features folder) and ``probe`` (on any features
folder, see :mod:`s3prl_mi_probe.features.folder`). Every fit reads its rows from the folder within
the memory budget, resident or streamed (:mod:`s3prl_mi_probe.probe.train`), so memory does not grow
with the folder. Under ``torchrun --nproc_per_node=K`` the layers are shared among the ranks: each
rank trains the probes of its layers, rank 0 gathers the rows and writes the outputs. Per-layer
results do not depend on which layers a rank trains together.
"""

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.analyses.hard_margin import sampled_hard_margins
from s3prl_mi_probe.common.allocator import release_large_blocks
from s3prl_mi_probe.common.device import check_device
from s3prl_mi_probe.common.problems import unusable
from s3prl_mi_probe.common.process_group import join_process_group
from s3prl_mi_probe.common.provenance import file_sha256, package_versions
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.common.threads import use_cpu_share
from s3prl_mi_probe.corpus.control import UNSEEN, keyed_control_labels, unscored_segments
from s3prl_mi_probe.corpus.manifest import SPLITS
from s3prl_mi_probe.features.cache import LayerCache
from s3prl_mi_probe.features.folder import REQUIRED_COLUMNS, ROWS_FILE, FeaturesFolder
from s3prl_mi_probe.metrics.columns import present_columns
from s3prl_mi_probe.probe.arrays import carve_dev
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH, PROBE_KINDS
from s3prl_mi_probe.probe.memory import DEFAULT_MEMORY_BUDGET, HARD_MARGIN_ROWS
from s3prl_mi_probe.probe.source import RowSource
from s3prl_mi_probe.probe.stopping import DEFAULT_TOL_BITS
from s3prl_mi_probe.probe.subsample import stratified_subsample

EVALUATED_SPLITS = ("dev", "test")


@dataclass(frozen=True)
class ProbeSettings:
    """Which probes and analyses run on a features folder, and within what memory.

    ``probes`` are probe kinds; ``mlp_width`` the MLP width; ``control`` a control key (``segment``
    or, on a features folder, a rows.tsv column) or None; ``seeds`` how many seeds each probe is trained
    with; ``mdl`` and ``hard_margin`` switch those analyses on, the latter on at most
    ``hard_margin_rows`` train rows; ``memory_budget`` (bytes above the process's baseline, per
    process) bounds what a fit holds; ``tol_bits`` is the dev gain that counts as progress in training;
    ``max_train_segments`` and ``max_per_class`` cut train to a seeded, class-stratified subsample (dev
    and test untouched).
    """

    device: str = "cpu"
    probes: tuple = ("linear",)
    mlp_width: int = DEFAULT_MLP_WIDTH
    control: str | None = None
    seeds: int = 1
    mdl: bool = False
    hard_margin: bool = False
    hard_margin_rows: int = HARD_MARGIN_ROWS
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    tol_bits: float = DEFAULT_TOL_BITS
    max_train_segments: int | None = None
    max_per_class: int | None = None
    seed: int = 0

    def __post_init__(self):
        known = self.probe_kinds()
        unknown = [probe for probe in self.probes if probe not in known]
        if unknown or not self.probes:
            named = ", ".join(map(repr, unknown)) or "none"
            raise ValueError(f"unknown probe kind(s) {named}; choose among {', '.join(known)}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        limits = {
            "max_train_segments": self.max_train_segments,
            "max_per_class": self.max_per_class,
            "hard_margin_rows": self.hard_margin_rows,
        }
        bad = [f"{name}={value}" for name, value in limits.items() if value is not None and value < 1]
        if bad:
            raise ValueError(f"{', '.join(bad)}: must be at least 1")
        if self.memory_budget <= 0:
            raise ValueError(f"memory budget must be positive, got {self.memory_budget}")
        check_device(self.device)
        object.__setattr__(self, "probes", tuple(dict.fromkeys(self.probes)))

    @staticmethod
    def probe_kinds():
        """The probe kinds these settings accept (those trained on features)."""
        return tuple(PROBE_KINDS)

    def seed_range(self):
        return range(self.seed, self.seed + self.seeds)


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


def report_unscored(key, unscored):
    """Say how many held-out segments the control is not scored on (``unscored``: per split, the count of
    those whose key value never occurs in train); their counts for the provenance."""
    if any(unscored.values()):
        tqdm.write(
            f"control {key}: {unscored.get('dev', 0)} dev and {unscored.get('test', 0)} test segment(s) not "
            f"scored: their {key} value never occurs in train, so their control label cannot be learned"
        )
    return {"control": {"key": key, "unscored_segments": unscored}}


def _absolute_rows(source):
    return np.arange(source.num_rows) if source.rows is None else source.rows


def probe_rows(sources, settings, controls=None, layers=None, progress=True):
    """Dev and test rows of ``layers`` (default all) for every probe kind of ``settings`` trained on features.

    ``sources``: RowSources of train, dev and test; ``controls``: a control label per row of the
    underlying folder (or arrays), which adds the control columns. Returns ``(rows, notes)``.
    """
    from s3prl_mi_probe.analyses.seed_spread import merge_seed_rows
    from s3prl_mi_probe.analyses.selectivity import with_control_columns

    layers = list(sources["train"].layer_ids if layers is None else layers)
    if not layers:
        return [], {}
    layer_columns, notes = _layer_analyses(sources["train"], settings, layers)
    rows = []
    for kind in (probe for probe in settings.probes if probe in PROBE_KINDS):
        fits = [_fit_and_evaluate(sources, kind, settings, seed, layers, progress) for seed in settings.seed_range()]
        kind_rows = merge_seed_rows([fit_rows for fit_rows, _ in fits])
        notes.setdefault("memory_plan", fits[0][1])
        if controls is not None:
            control_sources = {split: _scored_control(source, controls) for split, source in sources.items()}
            control_rows, _ = _fit_and_evaluate(control_sources, kind, settings, settings.seed, layers, progress)
            kind_rows = with_control_columns(kind_rows, control_rows)
        if settings.mdl:
            from s3prl_mi_probe.analyses.mdl import online_codelength

            codelengths = online_codelength(
                sources["train"],
                sources["dev"],
                np.unique(sources["train"].labels),
                seed=settings.seed,
                progress=progress,
                **_estimator_params(kind, settings, layers),
            )
            kind_rows = [{**row, **codelengths[layers.index(row["layer"])]} for row in kind_rows]
        rows += kind_rows
    train_size = {"num_train_segments": sources["train"].num_rows}
    return [{**row, **train_size, **layer_columns[row["layer"]]} for row in rows], notes


def _scored_control(source, controls):
    """``source`` labelled with its control labels, without the rows the control is not scored on."""
    labels = controls[_absolute_rows(source)]
    scored = labels != UNSEEN
    source = source.with_labels(labels)
    return source if scored.all() else source.subset(scored)


def _estimator_params(kind, settings, layers):
    return {
        "kind": kind,
        "mlp_width": settings.mlp_width,
        "device": settings.device,
        "memory_budget": settings.memory_budget,
        "tol_bits": settings.tol_bits,
        "layers": layers,
    }


def _fit_and_evaluate(sources, kind, settings, seed, layers, progress):
    from s3prl_mi_probe.probe.train import LayerProbes

    probes = LayerProbes(**_estimator_params(kind, settings, layers), seed=seed, progress=progress)
    probes.fit(sources["train"], dev=sources["dev"])
    rows = [row for split in EVALUATED_SPLITS for row in probes.evaluate(sources[split], split=split)]
    return rows, probes.memory_plan_.describe()


def _layer_analyses(train, settings, layers):
    """Per layer, the columns that describe the layer's features whatever the probe: the hard margin."""
    if not settings.hard_margin:
        return {layer: {} for layer in layers}, {}
    margins, used = sampled_hard_margins(
        train.select_layers(layers), settings.hard_margin_rows, settings.seed, settings.device, settings.memory_budget
    )
    columns = {layer: {"hard_margin": margin, "hard_margin_segments": used} for layer, margin in zip(layers, margins)}
    return columns, {"hard_margin_segments": used}


def ordered_rows(rows, probes):
    """Rows by probe kind (in ``probes`` order), split (dev, test) and layer: as one process writes them."""
    return sorted(
        rows, key=lambda row: (probes.index(row["probe"]), EVALUATED_SPLITS.index(row["split"]), row["layer"])
    )


def print_test_table(label, task, rows):
    """The test rows of one upstream as a table on the console."""
    test_rows = [row for row in rows if row["split"] == "test"]
    tqdm.write(f"[{label}] ({task}), test split:\n{format_table(test_rows, present_columns(test_rows))}")


def run_probe(features_dir, out, settings=ProbeSettings(), upstream=None, task=None, progress=True):
    """Probe every layer of a features folder and write the sweep outputs into ``out``.

    Returns the rows (None on torchrun ranks > 0). A folder that cannot be probed raises one
    ``ProblemsFound`` listing every problem, before anything is written. ``upstream`` and
    ``task`` label the rows (default: the folder's meta.json, else its name and ``custom``).
    """
    from s3prl_mi_probe.report.outputs import write_sweep_outputs

    release_large_blocks()
    use_cpu_share()
    folder = open_features_folder(features_dir, progress)
    controls = None if settings.control is None else folder_control_labels(folder, settings.control, settings.seed)
    sources, notes = folder_splits(folder, settings)
    group = join_process_group(settings.device)
    if controls is not None and group.leader:
        split_controls = {split: controls[_absolute_rows(source)] for split, source in sources.items()}
        notes.update(report_unscored(settings.control, unscored_segments(split_controls)))
    layers = group.share(range(folder.num_layers))
    rank_rows, rank_notes = probe_rows(
        sources, replace(settings, device=group.device), controls, layers, progress and group.leader
    )
    gathered = group.gather((layers, rank_rows, rank_notes))
    group.close()
    if not group.leader:
        return None
    upstream = upstream or folder.meta.get("upstream") or folder.root.name
    task = task or folder.meta.get("key_inputs", {}).get("task", {}).get("task") or "custom"
    rows = ordered_rows([row for _, part, _ in gathered for row in part], settings.probes)
    rows = [{"upstream": upstream, "task": task, **row} for row in rows]
    print_test_table(upstream, task, rows)
    provenance = {
        "versions": package_versions(),
        "features": str(folder.root.resolve()),
        "rows_tsv_sha256": file_sha256(folder.root / ROWS_FILE),
        "layers": [{"rows": len(layer), "dim": layer.shape[1], "dtype": str(layer.dtype)} for layer in folder.layers],
        "features_meta": folder.meta,
        "classes": sorted(folder.column("label").values[np.unique(sources["train"].labels)].tolist()),
        **notes,
        **gathered[0][2],
        "ranks": [{"layers": part_layers, **part_notes} for part_layers, _, part_notes in gathered],
        "settings": asdict(settings),
        "seed": settings.seed,
    }
    write_sweep_outputs(Path(out), rows, provenance)
    return rows
