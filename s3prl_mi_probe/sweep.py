"""The layer sweep: every layer of every upstream from one extraction pass, probes on cached features.

For each upstream: extract all hidden states once into the on-disk cache (sharded across torchrun
processes when launched so), then train all layer probes as one batched model on the cached train
split, choosing L2 and the epoch on dev, and evaluate dev and test. Writes ``sweep.csv``,
``sweep.json`` (rows + provenance), ``plots/`` and ``tb/`` into the output folder.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.atomic import write_json_atomic
from s3prl_mi_probe.corpus.segments import build_task
from s3prl_mi_probe.features.distributed import join_process_group
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.provenance import file_sha256, package_versions
from s3prl_mi_probe.report.plots import plot_sweep
from s3prl_mi_probe.report.rows import SWEEP_COLUMNS, write_sweep_csv
from s3prl_mi_probe.report.table import format_table
from s3prl_mi_probe.report.tensorboard import write_sweep_events

TABLE_COLUMNS = ("layer", "mi_bits", "h_y_bits", "ce_bits", "accuracy", "margin_median", "margin_positive_frac")


@dataclass(frozen=True)
class SweepSettings:
    """How features are extracted and probes trained (the task's own options live in TaskOptions)."""

    device: str = "cpu"
    slicing: str = "feature"
    dtype: str = "float32"
    batch_size: int = 8
    probe: str = "linear"
    seed: int = 0
    cache_dir: Path | None = None


def run_sweep(upstreams, manifest, task_options, out, settings=SweepSettings(), progress=True):
    """Sweep ``upstreams`` (UpstreamSpec list) on a manifest; returns the rows (None on torchrun ranks > 0,
    which only help to extract).

    Bad input raises one CorpusError listing every problem before any upstream is loaded.
    """
    out, manifest = Path(out), Path(manifest)
    task = build_task(manifest, task_options)
    group = join_process_group(settings.device)
    cache_dir = Path(settings.cache_dir) if settings.cache_dir else out / "cache"
    manifest_sha256 = file_sha256(manifest)
    rows, extracted = [], {}
    for spec in upstreams:
        extractor = Extractor(spec, group.device, settings.slicing, settings.dtype, settings.batch_size)
        cache = extractor.extract(
            task, manifest_sha256, cache_dir, group.rank, group.world_size, group.barrier, progress=progress
        )
        extracted[spec.label] = {"cache": str(cache.root), "checkpoint_sha256": extractor.checkpoint_sha256}
        if group.leader:
            rows += probe_cached_layers(cache, spec.label, task_options.task, settings, group.device, progress)
    group.close()
    if not group.leader:
        return None
    provenance = {
        "versions": package_versions(),
        "manifest": str(manifest.resolve()),
        "manifest_sha256": manifest_sha256,
        "upstreams": [
            {"label": spec.label, "name": spec.name, "checkpoint": str(spec.checkpoint or ""),
             **extracted[spec.label]}
            for spec in upstreams
        ],  # fmt: skip
        "task": asdict(task_options),
        "classes": task.classes,
        "segments": {split: int(task.label_counts(split).sum()) for split in task.splits},
        "dropped": {split: dict(counts) for split, counts in task.dropped.items()},
        "dev_carved_from_train": task.dev_carved,
        "settings": {**asdict(settings), "cache_dir": str(cache_dir)},
        "seed": settings.seed,
    }
    write_sweep_outputs(out, rows, provenance)
    return rows


def probe_cached_layers(cache, label, task_name, settings, device="cpu", progress=True):
    """Dev and test rows of every layer of one cached upstream."""
    from s3prl_mi_probe.probe.train import fit_layer_probes

    splits = {split: cache.split(split) for split in ("train", "dev", "test")}
    as_arrays = {split: ([np.array(layer, dtype=np.float32) for layer in layers], labels)
                 for split, (layers, labels) in splits.items()}  # fmt: skip
    fitted = fit_layer_probes(
        as_arrays["train"], dev=as_arrays["dev"], probe=settings.probe, seed=settings.seed,
        device=device, progress=progress,
    )  # fmt: skip
    rows = []
    for split in ("dev", "test"):
        for row in fitted.evaluate(*as_arrays[split], split=split):
            rows.append({"upstream": label, "task": task_name, **row})
    test_rows = [row for row in rows if row["split"] == "test"]
    tqdm.write(f"[sweep] {label} ({task_name}), test split:\n{format_table(test_rows, TABLE_COLUMNS)}")
    return rows


def write_sweep_outputs(out, rows, provenance):
    """``sweep.csv``, ``sweep.json``, ``plots/*.png`` and ``tb/`` of a sweep."""
    out.mkdir(parents=True, exist_ok=True)
    write_sweep_csv(out / "sweep.csv", rows)
    write_json_atomic(out / "sweep.json", {"columns": list(SWEEP_COLUMNS), "rows": rows, "provenance": provenance})
    plot_sweep(rows, out / "plots")
    write_sweep_events(rows, out / "tb")
