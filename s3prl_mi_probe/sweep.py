"""The layer sweep: every layer of every upstream from one extraction pass, probes on cached features.

For each upstream: extract all hidden states once into the on-disk cache (sharded across torchrun
processes when launched so), then train all layer probes of each asked kind as one batched model
on the cached train split, choosing L2 and the epoch on dev, and evaluate dev and test. The
``finetune`` kind instead trains copies of the layers above each layer plus a linear head, on the
upstream itself. Optional analyses on the cached features add columns: a control task and
selectivity, k seeds, MDL online codelength, the hard margin. Writes ``sweep.csv``, ``sweep.json``
(rows + provenance), ``plots/`` and ``tb/`` into the output folder.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.common.atomic import replace_folder, write_json_atomic
from s3prl_mi_probe.common.device import check_device
from s3prl_mi_probe.common.process_group import join_process_group
from s3prl_mi_probe.common.provenance import file_sha256, input_provenance
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.control import UNSEEN, check_control_key, control_labels, control_task, unscored_segments
from s3prl_mi_probe.corpus.task import build_task
from s3prl_mi_probe.features.extract import Extractor
from s3prl_mi_probe.metrics.columns import SWEEP_COLUMNS, present_columns
from s3prl_mi_probe.probe.kinds import FINETUNE, known_probe_kinds
from s3prl_mi_probe.report.plots import plot_sweep
from s3prl_mi_probe.report.rows import write_sweep_csv
from s3prl_mi_probe.report.tensorboard import write_sweep_events


@dataclass(frozen=True)
class SweepSettings:
    """How features are extracted, which probes are trained, and which analyses run.

    The task's own options live in TaskOptions. ``probes`` are probe kinds (``linear``, ``mlp1``,
    ``mlp2``, ``finetune``); ``hidden_dim`` is the MLP width; ``control`` a control key (see
    :mod:`s3prl_mi_probe.corpus.control`) or None; ``seeds`` how many seeds each probe is trained
    with; ``mdl`` and ``hard_margin`` switch those analyses on; ``finetune_layers`` limits the
    layers fine-tuned from (default: all).
    """

    device: str = "cpu"
    slicing: str = "feature"
    dtype: str = "float32"
    batch_size: int = 8
    probes: tuple = ("linear",)
    hidden_dim: int = 256
    control: str | None = None
    seeds: int = 1
    mdl: bool = False
    hard_margin: bool = False
    finetune_layers: tuple | None = None
    seed: int = 0
    cache_dir: Path | None = None

    def __post_init__(self):
        known = known_probe_kinds()
        unknown = [probe for probe in self.probes if probe not in known]
        if unknown or not self.probes:
            raise ValueError(f"unknown probe kind(s) {unknown or self.probes}; choose among {', '.join(known)}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        check_device(self.device)
        object.__setattr__(self, "probes", tuple(dict.fromkeys(self.probes)))


def run_sweep(
    upstreams, manifest, task_options, out, settings=SweepSettings(), progress=True, task=None, extractors=None
):
    """Sweep ``upstreams`` (UpstreamSpec list) on a manifest; returns the rows (None on torchrun ranks > 0,
    which only help to extract).

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
    control_provenance = _report_control(settings.control, controls)
    if FINETUNE in settings.probes:
        refuse_unsupported_finetune(upstreams)
    group = join_process_group(settings.device)
    cache_dir = Path(settings.cache_dir) if settings.cache_dir else out / "cache"
    manifest_sha256 = file_sha256(manifest)
    rows, extracted = [], {}
    for spec in upstreams:
        extractor = (extractors or {}).get(spec.label) or Extractor(
            spec, group.device, settings.slicing, settings.dtype, settings.batch_size
        )
        cache = extractor.extract(
            task, manifest_sha256, cache_dir, group.rank, group.world_size, group.barrier, progress=progress
        )
        extracted[spec.label] = {"cache": str(cache.root), "checkpoint_sha256": extractor.checkpoint_sha256}
        if group.leader:
            upstream_rows = probe_cached_layers(cache, task, settings, controls, group.device, progress)
            if FINETUNE in settings.probes:
                from_layers = settings.finetune_layers or tuple(range(cache.num_layers))
                upstream_rows += finetune_layers(
                    extractor.upstream, task, from_layers, settings, controls, group.device, progress
                )
            upstream_rows = [{"upstream": spec.label, "task": task_options.task, **row} for row in upstream_rows]
            test_rows = [row for row in upstream_rows if row["split"] == "test"]
            tqdm.write(
                f"[sweep] {spec.label} ({task_options.task}), test split:\n"
                f"{format_table(test_rows, present_columns(test_rows))}"
            )
            rows += upstream_rows
    group.close()
    if not group.leader:
        return None
    provenance = {
        **input_provenance(manifest, manifest_sha256),
        "upstreams": [
            {"label": spec.label, "name": spec.name, "checkpoint": str(spec.checkpoint or ""), **extracted[spec.label]}
            for spec in upstreams
        ],
        **task.provenance(),
        "settings": {**asdict(settings), "cache_dir": str(cache_dir)},
        **control_provenance,
        "seed": settings.seed,
    }
    write_sweep_outputs(out, rows, provenance)
    return rows


def _report_control(key, controls):
    """Say how many held-out segments the control is not scored on; their count for the provenance."""
    if controls is None:
        return {}
    unscored = unscored_segments(controls)
    if any(unscored.values()):
        tqdm.write(
            f"[sweep] control {key}: {unscored['dev']} dev and {unscored['test']} test segment(s) not scored: "
            f"their {key} value never occurs in train, so their control label cannot be learned"
        )
    return {"control": {"key": key, "unscored_segments": unscored}}


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


def _seeds(settings):
    return range(settings.seed, settings.seed + settings.seeds)


def probe_cached_layers(cache, task, settings, controls=None, device="cpu", progress=True):
    """Dev and test rows of every layer of one cached upstream, for each cached-feature probe kind.

    ``controls`` (per split, control labels in cache row order) adds the control columns.
    """
    from s3prl_mi_probe.analyses.seed_spread import merge_seed_rows
    from s3prl_mi_probe.analyses.selectivity import with_control_columns

    splits = {split: cache.split(split) for split in ("train", "dev", "test")}
    arrays = {
        split: ([np.array(layer, dtype=np.float32) for layer in layers], labels)
        for split, (layers, labels) in splits.items()
    }
    if controls is not None and any(len(controls[split]) != len(labels) for split, (_, labels) in arrays.items()):
        raise ValueError(f"cache {cache.root} does not hold the task's segments in the task's order")
    layer_columns = _layer_analyses(arrays, settings, device, progress)
    rows = []
    for kind in (probe for probe in settings.probes if probe != FINETUNE):
        kind_rows = merge_seed_rows(
            [_fit_and_evaluate(arrays, kind, settings, seed, device, progress) for seed in _seeds(settings)]
        )
        if controls is not None:
            control_arrays = {split: _scored_rows(layers, controls[split]) for split, (layers, _) in arrays.items()}
            kind_rows = with_control_columns(
                kind_rows, _fit_and_evaluate(control_arrays, kind, settings, settings.seed, device, progress)
            )
        if settings.mdl:
            from s3prl_mi_probe.analyses.mdl import online_codelength

            codelengths = online_codelength(
                arrays["train"],
                arrays["dev"],
                np.arange(len(task.classes)),
                seed=settings.seed,
                probe=kind,
                hidden_dim=settings.hidden_dim,
                device=device,
                progress=progress,
            )
            kind_rows = [{**row, **codelengths[row["layer"]]} for row in kind_rows]
        rows += kind_rows
    return [{**row, **layer_columns[row["layer"]]} for row in rows]


def _scored_rows(layers, controls):
    """A split's layers and control labels without the rows the control is not scored on."""
    scored = controls != UNSEEN
    if scored.all():
        return layers, controls
    return [layer[scored] for layer in layers], controls[scored]


def _fit_and_evaluate(arrays, kind, settings, seed, device, progress):
    from s3prl_mi_probe.probe.train import fit_layer_probes

    fitted = fit_layer_probes(
        arrays["train"],
        dev=arrays["dev"],
        probe=kind,
        seed=seed,
        device=device,
        hidden_dim=settings.hidden_dim,
        progress=progress,
    )
    return [row for split in ("dev", "test") for row in fitted.evaluate(*arrays[split], split=split)]


def _layer_analyses(arrays, settings, device, progress):
    """Per layer, the columns that describe the layer's features whatever the probe: the hard margin."""
    num_layers = len(arrays["train"][0])
    if not settings.hard_margin:
        return [{} for _ in range(num_layers)]
    from s3prl_mi_probe.analyses.hard_margin import hard_margins
    from s3prl_mi_probe.probe.arrays import stack_layers
    from s3prl_mi_probe.probe.standardize import RunningStandardizer

    features = stack_layers(arrays["train"][0])
    standardizer = RunningStandardizer(features.shape[0], features.shape[2])
    standardizer.update(features)
    margins = hard_margins(standardizer(features), arrays["train"][1], device=device)
    return [{"hard_margin": margin} for margin in margins]


def finetune_layers(upstream, task, from_layers, settings, controls=None, device="cpu", progress=True):
    """Dev and test rows of fine-tuning from each of ``from_layers``, seeds merged; ``controls`` as in
    :func:`probe_cached_layers` (the control task gets its own fine-tuned copies)."""
    from s3prl_mi_probe.analyses.seed_spread import merge_seed_rows
    from s3prl_mi_probe.analyses.selectivity import with_control_columns
    from s3prl_mi_probe.finetune.train import finetune_rows

    rows = merge_seed_rows(
        [
            finetune_rows(upstream, task, from_layers, device=device, seed=seed, progress=progress)
            for seed in _seeds(settings)
        ]
    )
    if controls is None:
        return rows
    control = control_task(task, controls)
    return with_control_columns(
        rows, finetune_rows(upstream, control, from_layers, device=device, seed=settings.seed, progress=progress)
    )


def write_sweep_outputs(out, rows, provenance):
    """``sweep.csv``, ``sweep.json``, ``plots/*.png`` and ``tb/`` of a sweep; plots and events of an earlier
    sweep into ``out`` are replaced, not mixed in."""
    out.mkdir(parents=True, exist_ok=True)
    replace_folder(out / "tb", lambda folder: write_sweep_events(rows, folder))
    replace_folder(out / "plots", lambda folder: plot_sweep(rows, folder))
    write_json_atomic(out / "sweep.json", {"columns": list(SWEEP_COLUMNS), "rows": rows, "provenance": provenance})
    write_sweep_csv(out / "sweep.csv", rows)
