"""The layer sweep: every layer of every upstream from one extraction pass, probes on cached features.

For each upstream: extract all hidden states once into the on-disk cache (sharded across torchrun
processes when launched so; the cache is a features folder), then probe that folder with the probe
stage's driver (:class:`~s3prl_mi_probe.probing.driver.ProbeDriver`: all layer probes of each asked
kind as one batched model on the cached train split, L2 and the epoch chosen on dev, dev and test
evaluated, in bounded memory, the layers shared among torchrun processes). The ``finetune`` kind
instead trains copies of the layers above each layer plus a linear head, on the upstream itself.
Optional analyses on the cached features add columns: a control task and selectivity, k seeds, MDL
online codelength, the hard margin. Writes ``sweep.csv``, ``sweep.json`` (rows + provenance),
``plots/`` and ``tb/`` into the output folder."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.analyses.merge import merged_rows
from s3prl_mi_probe.common.atomic import write_json_atomic
from s3prl_mi_probe.common.provenance import file_sha256, input_provenance, package_versions
from s3prl_mi_probe.corpus.control import check_control_key, control_labels, control_task, unscored_segments
from s3prl_mi_probe.corpus.manifest import SPLITS
from s3prl_mi_probe.corpus.task import build_task
from s3prl_mi_probe.features.cache import cache_key
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.probe.kinds import FINETUNE, known_probe_kinds
from s3prl_mi_probe.probing.driver import ProbeDriver, print_test_table, report_unscored
from s3prl_mi_probe.probing.folder import open_features_folder
from s3prl_mi_probe.probing.settings import ProbeSettings

FINISHED_ROWS_FOLDER = "probe_rows"  # under the cache folder: the rows of each upstream whose probes finished


@dataclass(frozen=True)
class SweepSettings(ProbeSettings):
    """How features are extracted, and (as :class:`ProbeSettings`) which probes and analyses run.

    The task's own options live in TaskOptions. ``probes`` may also hold ``finetune``, which trains
    on the upstream itself (not on cached features); ``finetune_layers`` limits the layers
    fine-tuned from (default: all).
    """

    slicing: str = "feature"
    dtype: str = "float32"
    batch_size: int = 8
    finetune_layers: tuple | None = None
    cache_dir: Path | None = None

    @staticmethod
    def probe_kinds():
        return known_probe_kinds()


def run_sweep(
    upstreams, manifest, task_options, out, settings=SweepSettings(), progress=True, task=None, extractors=None
):
    """Sweep ``upstreams`` (UpstreamSpec list) on a manifest; returns the rows (None on torchrun ranks > 0,
    which extract their share of the utterances and train their share of the layers).

    Bad input (corpus problems, a refused or missing control key) raises one ValueError listing every
    problem before any upstream is loaded. A caller that holds them already may pass the built
    ``task`` (of ``task_options``) and loaded ``extractors`` ({upstream label: Extractor} made with
    these settings), which are then reused.
    """
    out, manifest = Path(out), Path(manifest)
    if settings.control is not None:
        check_control_key(settings.control, task_options.task)
    task = build_task(manifest, task_options) if task is None else task
    controls = None if settings.control is None else control_labels(task, settings.control, settings.seed)
    if FINETUNE in settings.probes:
        refuse_unsupported_finetune(upstreams)
    driver = ProbeDriver(settings, progress)
    group = driver.group
    control_provenance = {}
    if controls is not None and group.leader:
        control_provenance = report_unscored(settings.control, unscored_segments(controls))
    cache_dir = Path(settings.cache_dir) if settings.cache_dir else out / "cache"
    manifest_sha256 = file_sha256(manifest)
    rows, extracted, probe_notes = [], {}, {}
    for spec in upstreams:
        extractor = (extractors or {}).get(spec.label) or Extractor(
            spec, group.device, settings.slicing, settings.dtype, settings.batch_size
        )
        cache = extractor.extract(
            task, manifest_sha256, cache_dir, group.rank, group.world_size, group.barrier, progress=progress
        )
        extracted[spec.label] = {"cache": str(cache.root), "checkpoint_sha256": extractor.checkpoint_sha256}
        finished = finished_rows_path(cache_dir, cache, settings)
        if finished.is_file():
            upstream_rows, notes = json.loads(finished.read_text()).values()
            if group.leader:
                tqdm.write(f"[{spec.label}] probe rows reused from an earlier run with these settings: {finished}")
        else:
            folder = open_features_folder(cache.root)
            probed = driver.probe(folder, None if controls is None else folder_order(controls, folder))
            if group.leader:
                upstream_rows, notes = probed.rows, probed.notes
                if FINETUNE in settings.probes:
                    from_layers = settings.finetune_layers or tuple(range(cache.num_layers))
                    upstream_rows += finetune_layers(
                        extractor.upstream, task, from_layers, settings, controls, group.device, progress
                    )
                upstream_rows = [{"upstream": spec.label, "task": task_options.task, **row} for row in upstream_rows]
                finished.parent.mkdir(exist_ok=True)
                write_json_atomic(finished, {"rows": upstream_rows, "notes": notes})
        if group.leader:
            probe_notes[spec.label] = notes
            print_test_table(spec.label, task_options.task, upstream_rows)
            rows += upstream_rows
    if not driver.close():
        return None
    provenance = {
        **input_provenance(manifest, manifest_sha256),
        "upstreams": [
            {"label": spec.label, "name": spec.name, "checkpoint": str(spec.checkpoint or ""), **extracted[spec.label]}
            for spec in upstreams
        ],
        **task.provenance(),
        "probe_training": probe_notes,
        "settings": {**asdict(settings), "cache_dir": str(cache_dir)},
        **control_provenance,
        "seed": settings.seed,
    }
    driver.write(out, rows, provenance)
    return rows


def finished_rows_path(cache_dir, cache, settings):
    """Where the rows of ``cache``'s finished probe stage are kept, so that a rerun resumes after them.

    The name covers the cache entry (upstream, checkpoint, manifest, task, extraction), every probe
    setting and the package versions: a rerun with anything changed finds no file and trains anew.
    """
    probe_settings = {name: value for name, value in asdict(settings).items() if name != "cache_dir"}
    key = cache_key(cache=cache.root.name, settings=probe_settings, versions=package_versions())
    return Path(cache_dir) / FINISHED_ROWS_FOLDER / f"{cache.root.name}-{key[:16]}.json"


def refuse_unsupported_finetune(upstreams):
    """One ValueError naming every upstream whose layers the fine-tune probe cannot copy, before any work.

    Each upstream is loaded once on the CPU for the check and released.
    """
    from s3prl_mi_probe.finetune.upper_layers import UnsupportedUpstream, upstream_family

    problems = []
    for spec in upstreams:
        try:
            upstream_family(spec.load("cpu"))
        except UnsupportedUpstream as error:
            problems.append(f"{spec.label}: {error}")
    if problems:
        raise ValueError("--probe finetune: " + "; ".join(problems) + " (sweep those without finetune)")


def folder_order(controls, folder):
    """``controls`` (per split, control labels in task order) as one label per row of the sweep cache ``folder``,
    whose rows are in task order."""
    controls = np.concatenate([controls[split] for split in SPLITS if split in controls])
    if controls.size != folder.num_rows:
        raise ValueError(f"cache {folder.root} does not hold the task's segments in the task's order")
    return controls


def finetune_layers(upstream, task, from_layers, settings, controls=None, device="cpu", progress=True):
    """Dev and test rows of fine-tuning from each of ``from_layers``, seeds merged; ``controls`` (per split,
    control labels in task order) add the control columns (the control task gets its own fine-tuned copies)."""
    from s3prl_mi_probe.finetune.train import finetune_rows

    seed_rows = [
        finetune_rows(upstream, task, from_layers, device=device, seed=seed, progress=progress)
        for seed in settings.seed_range()
    ]
    train_size = {"num_train_segments": int(task.label_counts("train").sum())}
    control_rows = None
    if controls is not None:
        control = control_task(task, controls)
        control_rows = finetune_rows(
            upstream, control, from_layers, device=device, seed=settings.seed, progress=progress
        )
    return [{**row, **train_size} for row in merged_rows(seed_rows, control_rows)]
