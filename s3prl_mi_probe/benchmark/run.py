"""Running a protocol over upstreams: every upstream × task through the sweep engine, resumable.

Layout of the output folder::

    benchmark.json            the protocol this folder holds (name, sha256, text)
    corpora/<corpus>/         corpora the protocol synthesizes
    cache/                    feature caches, one per upstream × task (safe to delete when done)
    runs/<upstream>/<task>/   the cell's sweep (sweep.csv, sweep.json, plots/, tb/) and, once
                              finished, cell.json
    leaderboard.md|csv|html   the leaderboard of every finished cell, plots/ its overlays

A cell is finished when its ``cell.json`` exists and names this protocol and the upstream's
checkpoint (sha256): a rerun skips it, a killed run continues with the cells left (and with the
extraction where it stopped). Each upstream is loaded once; the tasks that share a corpus share
its forward passes. ``--add`` copies the finished cells of other folders of the same protocol.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from s3prl_mi_probe.common.atomic import write_json_atomic
from s3prl_mi_probe.common.folder_names import run_folder_name
from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.common.provenance import file_sha256
from s3prl_mi_probe.corpus.task import build_task
from s3prl_mi_probe.probe.kinds import FINETUNE

STATE_FILE = "benchmark.json"
CELL_FILE = "cell.json"


def _cannot_run(out, problems):
    """The error of a benchmark that cannot run into ``out``: every problem found."""
    return ProblemsFound(f"the benchmark into {out}", problems)


def run_benchmark(protocol, upstreams, out, device="cpu", manifests=None, added=(), progress=True):
    """Run (or continue) ``protocol`` for ``upstreams`` (UpstreamSpec list) into ``out``, merge the
    finished cells of the ``added`` folders, and write the leaderboard; returns its paths.

    ``manifests`` ({corpus: path}) overrides the protocol's manifest paths. Every problem that keeps
    the run from starting (another protocol in ``out``, clashing upstream labels, missing manifests
    with the command that makes each, corpus problems, folders to add that do not fit) is raised at
    once as a ProblemsFound before any upstream is loaded.
    """
    from s3prl_mi_probe.report.leaderboard import write_leaderboard

    out = Path(out)
    _check_folder(out, protocol)
    _check_labels(out, upstreams)
    incoming = plan_merge(out, protocol, added)
    arriving = {(record["upstream"], record["task"]): record for record, _, _ in incoming}
    todo = {spec.label: _pending_tasks(out, protocol, spec, arriving) for spec in upstreams}
    pending_tasks = {task for tasks in todo.values() for task in tasks}
    if pending_tasks:
        _check_manifests(out, protocol, manifests or {}, pending_tasks)
    _claim_folder(out, protocol)
    copy_cells(out, incoming)
    if pending_tasks:
        manifests_of = corpus_manifests(protocol, out, manifests or {}, pending_tasks)
        tasks = build_tasks(protocol, manifests_of, pending_tasks)
        total = len(upstreams) * len(protocol.tasks)
        cells = tqdm(total=total, initial=total - sum(map(len, todo.values())), desc="benchmark", unit="cell")
        with cells:
            for spec in upstreams:
                if todo[spec.label]:
                    _run_upstream(protocol, spec, todo[spec.label], tasks, manifests_of, out, device, cells, progress)
    return write_leaderboard(out, finished_cells(out, protocol), _leaderboard_context(protocol))


def _check_folder(out, protocol):
    """Refuse a folder that holds a benchmark of another protocol."""
    state_path = out / STATE_FILE
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state["protocol_sha256"] != protocol.sha256:
            reason = (
                f"holds a benchmark of protocol {state['protocol']} ({state['protocol_source']}, sha256 "
                f"{state['protocol_sha256'][:12]}), not of {protocol.name} ({protocol.source}, sha256 "
                f"{protocol.sha256[:12]}): use another --out, or the protocol file it was run with"
            )
            raise _cannot_run(out, [Problem(out, reason)])


def _claim_folder(out, protocol):
    """Record the protocol of ``out`` (once)."""
    if (out / STATE_FILE).is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / STATE_FILE,
        {
            "protocol": protocol.name,
            "protocol_sha256": protocol.sha256,
            "protocol_source": protocol.source,
            "protocol_text": protocol.text,
        },
    )


def _check_labels(out, upstreams):
    folders = {}
    for spec in upstreams:
        folders.setdefault(run_folder_name(spec.label), []).append(spec.label)
    clashes = [labels for labels in folders.values() if len(labels) > 1]
    if clashes:
        raise _cannot_run(
            out,
            [
                Problem(
                    None,
                    f"upstreams {', '.join(labels)} would share one result folder: "
                    "give their checkpoints distinct file names",
                )
                for labels in clashes
            ],
        )


def _cell_folder(out, label, task):
    return out / "runs" / run_folder_name(label) / task


def _cell_record(protocol, spec, task, checkpoint_sha256, probes):
    return {
        "upstream": spec.label,
        "name": spec.name,
        "checkpoint": str(spec.checkpoint or ""),
        "checkpoint_sha256": checkpoint_sha256,
        "task": task,
        "probes": list(probes),
        "protocol": protocol.name,
        "protocol_sha256": protocol.sha256,
    }


def _pending_tasks(out, protocol, spec, arriving):
    """The protocol's tasks not yet finished for ``spec`` (in protocol order), counting the cells
    ``arriving`` from ``--add`` folders ({(upstream, task): cell record}) as here."""
    checkpoint_sha256 = file_sha256(spec.checkpoint)
    pending = []
    for task in protocol.tasks:
        marker = _cell_folder(out, spec.label, task) / CELL_FILE
        record = arriving.get((spec.label, task)) or (json.loads(marker.read_text()) if marker.is_file() else None)
        if record is not None:
            if record["protocol_sha256"] == protocol.sha256 and record["checkpoint_sha256"] == checkpoint_sha256:
                continue
            tqdm.write(f"[benchmark] {spec.label} × {task}: the checkpoint changed since this cell ran; redoing it")
        pending.append(task)
    return pending


def _check_manifests(out, protocol, overrides, task_names):
    """A ProblemsFound naming, for every missing manifest, the command that makes it (all at once)."""
    unknown = sorted(set(overrides) - set(protocol.corpora))
    problems = [
        Problem(None, f"--manifest {name}=...: the protocol has no corpus {name!r} ({', '.join(protocol.corpora)})")
        for name in unknown
    ]
    for name in dict.fromkeys(protocol.tasks[task][0] for task in task_names):
        corpus = protocol.corpora[name]
        if corpus.synthesize is not None and name not in overrides:
            continue
        manifest = Path(overrides.get(name, corpus.manifest))
        if not manifest.is_file():
            reason = (
                f"corpus {name!r}: manifest {manifest} not found; make it with\n    {corpus.prepare}\n  "
                f"or point to it with --manifest {name}=PATH"
            )
            problems.append(Problem(None, reason))
    if problems:
        raise _cannot_run(out, problems)


def corpus_manifests(protocol, out, overrides, task_names):
    """{corpus: manifest path} of the corpora of ``task_names`` (checked by :func:`_check_manifests`);
    synthetic corpora are made under ``out/corpora`` (once)."""
    from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus

    manifests = {}
    for name in dict.fromkeys(protocol.tasks[task][0] for task in task_names):
        corpus = protocol.corpora[name]
        if corpus.synthesize is None or name in overrides:
            manifests[name] = Path(overrides.get(name, corpus.manifest))
            continue
        folder = out / "corpora" / name
        manifests[name] = folder / "manifest.tsv"
        if not manifests[name].is_file():
            tqdm.write(f"[benchmark] synthesizing corpus {name!r} ({corpus.synthesize}) into {folder}")
            synthesize_corpus(folder, corpus.synthesize["utterances"], seed=corpus.synthesize.get("seed", 0))
    return manifests


def build_tasks(protocol, manifests, task_names):
    """{task: TaskData} of ``task_names``; the corpus problems of all of them are raised together, each
    reason led by its task, in one ProblemsFound naming the manifests that have problems."""
    tasks, problems, failed = {}, [], []
    for name in protocol.tasks:
        if name not in task_names:
            continue
        corpus, options = protocol.tasks[name]
        try:
            tasks[name] = build_task(manifests[corpus], options)
        except ProblemsFound as error:
            problems += [replace(problem, reason=f"task {name}: {problem.reason}") for problem in error.problems]
            failed.append(str(manifests[corpus]))
    if problems:
        raise ProblemsFound(", ".join(dict.fromkeys(failed)), problems)
    return tasks


def _run_upstream(protocol, spec, task_names, tasks, manifests, out, device, cells, progress):
    """The pending cells of one upstream: one load, one forward per utterance and corpus, one sweep per task."""
    from s3prl_mi_probe.features.extract import Extractor
    from s3prl_mi_probe.sweep import SweepSettings, run_sweep

    extractor = Extractor(spec, device, **protocol.extraction)
    probes = _probes_for(protocol, extractor, spec)
    cache_dir = out / "cache"
    by_corpus = {}
    for name in task_names:
        by_corpus.setdefault(protocol.tasks[name][0], []).append(name)
    for corpus, names in by_corpus.items():
        cells.set_postfix_str(f"{spec.label}: extracting {', '.join(names)}")
        extractor.extract_tasks(
            [tasks[name] for name in names], file_sha256(manifests[corpus]), cache_dir, progress=progress
        )
    settings = SweepSettings(
        device=device,
        probes=probes,
        mlp_width=protocol.mlp_width,
        seeds=protocol.seeds,
        finetune_layers=protocol.finetune_layers,
        seed=protocol.seed,
        cache_dir=cache_dir,
        **protocol.extraction,
    )
    for name in task_names:
        cells.set_postfix_str(f"{spec.label} × {name}")
        folder = _cell_folder(out, spec.label, name)
        (folder / CELL_FILE).unlink(missing_ok=True)
        corpus, options = protocol.tasks[name]
        run_sweep(
            [spec],
            manifests[corpus],
            options,
            folder,
            settings,
            progress=progress,
            task=tasks[name],
            extractors={spec.label: extractor},
        )
        write_json_atomic(folder / CELL_FILE, _cell_record(protocol, spec, name, extractor.checkpoint_sha256, probes))
        cells.update()
        tqdm.write(f"[benchmark] {spec.label} × {name}: finished ({folder})")


def _probes_for(protocol, extractor, spec):
    """The protocol's probe kinds, without ``finetune`` for upstreams whose layers it cannot copy."""
    if FINETUNE not in protocol.probes:
        return protocol.probes
    from s3prl_mi_probe.finetune.upper_layers import UnsupportedUpstream, upstream_family

    try:
        upstream_family(extractor.upstream)
    except UnsupportedUpstream as error:
        tqdm.write(f"[benchmark] {spec.label}: no finetune probe ({error})")
        return tuple(probe for probe in protocol.probes if probe != FINETUNE)
    return protocol.probes


def finished_cells(out, protocol):
    """``[(cell record, cell folder)]`` of every finished cell of ``out``, in protocol task order."""
    cells = []
    for marker in sorted(Path(out).glob(f"runs/*/*/{CELL_FILE}")):
        record = json.loads(marker.read_text())
        if record["protocol_sha256"] == protocol.sha256 and record["task"] in protocol.tasks:
            cells.append((record, marker.parent))
    order = list(protocol.tasks)
    return sorted(cells, key=lambda cell: (order.index(cell[0]["task"]), cell[0]["upstream"]))


def plan_merge(out, protocol, folders):
    """``[(record, source, target)]``: the finished cells of other benchmark folders of the same protocol
    to copy into ``out``.

    A folder of another protocol, one without a benchmark, or a cell whose upstream label is already
    here (or in another added folder) with another checkpoint is an error (all listed); a cell already
    here with the same checkpoint is left out.
    """
    problems, planned = [], {}
    for folder in map(Path, folders):
        state_path = folder / STATE_FILE
        if not state_path.is_file():
            problems.append(Problem(None, f"--add {folder}: no {STATE_FILE}, not a benchmark output folder"))
            continue
        state = json.loads(state_path.read_text())
        if state["protocol_sha256"] != protocol.sha256:
            reason = (
                f"--add {folder}: holds protocol {state['protocol']} (sha256 {state['protocol_sha256'][:12]}), "
                f"not {protocol.name} (sha256 {protocol.sha256[:12]})"
            )
            problems.append(Problem(None, reason))
            continue
        for record, source in finished_cells(folder, protocol):
            target = _cell_folder(out, record["upstream"], record["task"])
            marker = target / CELL_FILE
            here = json.loads(marker.read_text()) if marker.is_file() else None
            other = here or planned.get(target, (None,))[0]
            if other is not None and other["checkpoint_sha256"] != record["checkpoint_sha256"]:
                where = out if here is not None else "another --add folder"
                reason = (
                    f"--add {folder}: {record['upstream']} × {record['task']} is also in {where} with another "
                    f"checkpoint (sha256 {str(other['checkpoint_sha256'])[:12]} there, "
                    f"{str(record['checkpoint_sha256'])[:12]} here)"
                )
                problems.append(Problem(None, reason))
            elif here is None:
                planned[target] = (record, source, target)
    if problems:
        raise _cannot_run(out, problems)
    return list(planned.values())


def copy_cells(out, planned):
    """Copy planned cells (from :func:`plan_merge`) into ``out``: each staged beside ``runs/``, then moved in."""
    for _, source, target in planned:
        staging = out / f".adding-{target.parent.name}-{target.name}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        tqdm.write(f"[benchmark] added {source}")


def _leaderboard_context(protocol):
    return {
        "protocol": protocol.name,
        "protocol_sha256": protocol.sha256,
        "description": protocol.description,
        "tasks": list(protocol.tasks),
        "primary_probe": protocol.primary_probe,
        "sample_units": {task_name: options.kind.unit for task_name, (_, options) in protocol.tasks.items()},
    }
