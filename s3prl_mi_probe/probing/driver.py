"""The one driver of the probe stage: probe features folders, gather the rows, write the outputs.

``probe`` runs it on any features folder (:func:`run_probe`), ``sweep`` on the cache of each upstream
after extracting it (:func:`s3prl_mi_probe.sweep.run_sweep`). Under ``torchrun --nproc_per_node=K``
the layers are shared among the ranks: each rank trains the probes of its layers, rank 0 gathers
the rows and writes the outputs.
"""

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.common.allocator import release_large_blocks
from s3prl_mi_probe.common.process_group import join_process_group
from s3prl_mi_probe.common.provenance import file_sha256, package_versions
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.common.threads import use_cpu_share
from s3prl_mi_probe.corpus.control import unscored_segments
from s3prl_mi_probe.corpus.manifest import SPLITS
from s3prl_mi_probe.features.folder import ROWS_FILE
from s3prl_mi_probe.metrics.columns import present_columns
from s3prl_mi_probe.probing.folder import folder_control_labels, folder_splits, open_features_folder
from s3prl_mi_probe.probing.rows import ordered_rows, probe_rows
from s3prl_mi_probe.probing.settings import ProbeSettings


@dataclass
class ProbedFolder:
    """What rank 0 gathered of a probed folder: its ``rows`` (ordered as one process writes them), the
    ``sources`` it read, ``notes`` on the splits and on rank 0's fits, and each rank's ``layers`` and fit notes."""

    rows: list
    sources: dict
    split_notes: dict
    fit_notes: dict
    ranks: list

    @property
    def notes(self):
        """The split notes and rank 0's fit notes in one dict (what a sweep keeps per upstream)."""
        return {**self.split_notes, **self.fit_notes}


class ProbeDriver:
    """The probe stage of this process: joins torchrun's group (or runs alone), probes features folders with
    ``settings``, and writes the outputs on rank 0.

    Make it after the checks that can refuse the input, so that bad input stops every rank before the group.
    """

    def __init__(self, settings, progress=True):
        release_large_blocks()
        use_cpu_share()
        self.settings, self.progress = settings, progress
        self.group = join_process_group(settings.device)

    def probe(self, folder, controls=None):
        """Every probe kind, seed and analysis of the settings on every layer of ``folder``, this rank training
        its share of the layers; a :class:`ProbedFolder` on rank 0, None on the others.

        ``controls``: a control label per row of the folder, which adds the control columns.
        """
        sources, split_notes = folder_splits(folder, self.settings)
        layers = self.group.share(range(folder.num_layers))
        settings = replace(self.settings, device=self.group.device)
        rank_rows, rank_notes = probe_rows(sources, settings, controls, layers, self.progress and self.group.leader)
        gathered = self.group.gather((layers, rank_rows, rank_notes))
        if not self.group.leader:
            return None
        rows = ordered_rows([row for _, part, _ in gathered for row in part], self.settings.probes)
        ranks = [{"layers": part_layers, **part_notes} for part_layers, _, part_notes in gathered]
        return ProbedFolder(rows, sources, split_notes, gathered[0][2], ranks)

    def close(self):
        """Leave the process group; returns whether this is rank 0, which writes the outputs."""
        self.group.close()
        return self.group.leader

    @staticmethod
    def write(out, rows, provenance):
        """``sweep.csv``, ``sweep.json``, plots and TensorBoard events into ``out`` (rank 0, after :meth:`close`)."""
        from s3prl_mi_probe.report.outputs import write_sweep_outputs

        write_sweep_outputs(Path(out), rows, provenance)


def report_unscored(key, unscored):
    """Say how many held-out segments the control is not scored on (``unscored``: per split, the count of
    those whose key value never occurs in train); their counts for the provenance."""
    if any(unscored.values()):
        tqdm.write(
            f"control {key}: {unscored.get('dev', 0)} dev and {unscored.get('test', 0)} test segment(s) not "
            f"scored: their {key} value never occurs in train, so their control label cannot be learned"
        )
    return {"control": {"key": key, "unscored_segments": unscored}}


def print_test_table(label, task_name, rows):
    """The test rows of one upstream as a table on the console."""
    test_rows = [row for row in rows if row["split"] == "test"]
    tqdm.write(f"[{label}] ({task_name}), test split:\n{format_table(test_rows, present_columns(test_rows))}")


def run_probe(features_dir, out, settings=None, upstream=None, task_name=None, progress=True):
    """Probe every layer of a features folder with ``settings`` (default :class:`ProbeSettings`) and write the
    sweep outputs into ``out``.

    Returns the rows (None on torchrun ranks > 0). A folder that cannot be probed raises one
    ``ProblemsFound`` listing every problem, before anything is written. ``upstream`` and
    ``task_name`` label the rows (default: the folder's meta.json, else its name and ``custom``).
    """
    settings = settings or ProbeSettings()
    folder = open_features_folder(features_dir, progress)
    controls = None if settings.control is None else folder_control_labels(folder, settings.control, settings.seed)
    driver = ProbeDriver(settings, progress)
    control_notes = {}
    if controls is not None and driver.group.leader:
        split_controls = {split: controls[folder.rows_of(split)] for split in SPLITS}
        control_notes = report_unscored(settings.control, unscored_segments(split_controls))
    probed = driver.probe(folder, controls)
    if not driver.close():
        return None
    upstream = upstream or folder.meta.get("upstream") or folder.root.name
    task_name = task_name or folder.meta.get("key_inputs", {}).get("task", {}).get("task") or "custom"
    rows = [{"upstream": upstream, "task": task_name, **row} for row in probed.rows]
    print_test_table(upstream, task_name, rows)
    provenance = {
        "versions": package_versions(),
        "features": str(folder.root.resolve()),
        "rows_tsv_sha256": file_sha256(folder.root / ROWS_FILE),
        "layers": [{"rows": len(layer), "dim": layer.shape[1], "dtype": str(layer.dtype)} for layer in folder.layers],
        "features_meta": folder.meta,
        "classes": sorted(folder.column("label").values[np.unique(probed.sources["train"].labels)].tolist()),
        **probed.split_notes,
        **control_notes,
        **probed.fit_notes,
        "ranks": probed.ranks,
        "settings": asdict(settings),
        "seed": settings.seed,
    }
    driver.write(out, rows, provenance)
    return rows
