"""Benchmark protocols: versioned YAML files that fix what a benchmark measures, so that two labs'
numbers compare.

A protocol names its corpora (a manifest and the ``prepare`` command that makes it, or a
synthetic corpus the benchmark makes itself), its tasks (each on one corpus, with the task's
filters as :class:`~s3prl_mi_probe.corpus.task.TaskOptions` fields), the probe kinds (the first is
the leaderboard's; ``finetune`` may follow), seeds and extraction settings. The shipped protocols
live in ``protocols/``; ``load_protocol`` takes a shipped name or a path and reports every problem
of a file at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.corpus.task import TaskOptions
from s3prl_mi_probe.corpus.task_kinds import TASK_KINDS
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH, FINETUNE, known_probe_kinds

PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"
FORMAT = 1
TOP_KEYS = {
    "protocol": "the protocol's name and version, e.g. librispeech-v1",
    "format": f"the file format, {FORMAT}",
    "description": "what the protocol measures",
    "corpora": "name -> {manifest, prepare} or {synthesize: {utterances, seed}}",
    "tasks": "task -> {corpus, TaskOptions fields}",
    "probes": "probe kinds; the first (not finetune) ranks the leaderboard",
    "finetune_layers": "layers the finetune probe starts from",
    "mlp_width": "hidden units of mlp1/mlp2",
    "seeds": "seeds per probe",
    "seed": "seed of dev carving, frame subsets, probes",
    "extraction": "{slicing, dtype, batch_size}",
}
REQUIRED_KEYS = ("protocol", "format", "description", "corpora", "tasks", "probes")
EXTRACTION_DEFAULTS = {"slicing": "feature", "dtype": "float32", "batch_size": 8}
SYNTHESIZE_KEYS = {"utterances", "seed"}
_TASK_OPTION_KEYS = {field.name for field in fields(TaskOptions)} - {"task", "seed"}


def _protocol_problems(source, reasons):
    """The error of a protocol file: every reason found in it, as one :class:`ProblemsFound`."""
    return ProblemsFound(f"protocol {source}", [Problem(None, reason) for reason in reasons])


@dataclass(frozen=True)
class CorpusSpec:
    """A protocol's corpus: a manifest (path as written, and the command that prepares it) or a synthetic one."""

    name: str
    manifest: str | None = None
    prepare: str | None = None
    synthesize: dict | None = None


@dataclass(frozen=True)
class Protocol:
    """A loaded, checked protocol; ``sha256`` is that of the file's bytes (what a leaderboard records)."""

    name: str
    description: str
    corpora: dict
    tasks: dict  # task name -> (corpus name, TaskOptions)
    probes: tuple
    finetune_layers: tuple | None
    mlp_width: int
    seeds: int
    seed: int
    extraction: dict
    source: str
    sha256: str
    text: str

    @property
    def primary_probe(self):
        """The probe kind the leaderboard ranks by."""
        return self.probes[0]


def shipped_protocols():
    """Names of the protocols shipped with the package."""
    return sorted(path.stem for path in PROTOCOL_DIR.glob("*.yaml"))


def protocol_path(name_or_path):
    """The file of a shipped protocol name, or the path given; ProblemsFound when neither exists."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = PROTOCOL_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise _protocol_problems(
        name_or_path,
        [f"no protocol file {path} and no shipped protocol of that name (shipped: {', '.join(shipped_protocols())})"],
    )


def load_protocol(name_or_path):
    """A checked :class:`Protocol` from a shipped name or a YAML path; ProblemsFound lists every problem."""
    path = protocol_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    return parse_protocol(text, str(path))


def parse_protocol(text, source="<text>"):
    """A checked :class:`Protocol` from YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _protocol_problems(source, [f"not valid YAML ({' '.join(str(error).split())})"]) from error
    if not isinstance(data, dict):
        raise _protocol_problems(source, ["expected a mapping of the keys " + ", ".join(TOP_KEYS)])
    problems = [f"missing key '{key}' ({TOP_KEYS[key]})" for key in REQUIRED_KEYS if key not in data]
    problems += [f"unknown key '{key}' (known: {', '.join(TOP_KEYS)})" for key in data if key not in TOP_KEYS]
    if data.get("format", FORMAT) != FORMAT:
        problems.append(f"format {data.get('format')!r} is not supported (this version reads format {FORMAT})")
    corpora = _corpora(data.get("corpora"), problems)
    seed = _integer(data, "seed", 0, 0, problems)
    tasks = _tasks(data.get("tasks"), corpora, seed, problems)
    probes = _probes(data.get("probes"), problems)
    finetune_layers = data.get("finetune_layers")
    if finetune_layers is not None and not (
        isinstance(finetune_layers, list) and all(isinstance(layer, int) and layer >= 0 for layer in finetune_layers)
    ):
        problems.append(f"finetune_layers must be a list of layer indices >= 0, got {finetune_layers!r}")
    extraction = _extraction(data.get("extraction") or {}, problems)
    protocol = Protocol(
        name=str(data.get("protocol", "")),
        description=" ".join(str(data.get("description", "")).split()),
        corpora=corpora,
        tasks=tasks,
        probes=probes,
        finetune_layers=tuple(finetune_layers) if isinstance(finetune_layers, list) else None,
        mlp_width=_integer(data, "mlp_width", DEFAULT_MLP_WIDTH, 1, problems),
        seeds=_integer(data, "seeds", 1, 1, problems),
        seed=seed,
        extraction=extraction,
        source=source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        text=text,
    )
    if problems:
        raise _protocol_problems(source, problems)
    return protocol


def _integer(data, key, default, minimum, problems):
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        problems.append(f"{key} must be an integer >= {minimum}, got {value!r}")
        return default
    return value


def _corpora(section, problems):
    if not isinstance(section, dict) or not section:
        if section is not None:
            problems.append("corpora must map corpus names to {manifest, prepare} or {synthesize}")
        return {}
    corpora = {}
    for name, entry in section.items():
        where = f"corpora.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        unknown = sorted(set(entry) - {"manifest", "prepare", "synthesize"})
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)} (known: manifest, prepare, synthesize)")
        if ("manifest" in entry) == ("synthesize" in entry):
            problems.append(f"{where}: give either 'manifest' (with 'prepare') or 'synthesize'")
        if "manifest" in entry and not entry.get("prepare"):
            problems.append(f"{where}: a manifest corpus needs 'prepare', the command that makes its manifest")
        synthesize = entry.get("synthesize")
        if synthesize is not None and not (
            isinstance(synthesize, dict)
            and set(synthesize) <= SYNTHESIZE_KEYS
            and all(isinstance(value, int) and value >= 0 for value in synthesize.values())
            and synthesize.get("utterances", 0) >= 3
        ):
            problems.append(f"{where}.synthesize: expected {{utterances: N >= 3, seed: S}}, got {synthesize!r}")
        corpora[name] = CorpusSpec(name, entry.get("manifest"), entry.get("prepare"), synthesize)
    return corpora


def _tasks(section, corpora, seed, problems):
    if not isinstance(section, dict) or not section:
        if section is not None:
            problems.append(f"tasks must map task names ({', '.join(TASK_KINDS)}) to their corpus and options")
        return {}
    tasks = {}
    for name, entry in section.items():
        where = f"tasks.{name}"
        if name not in TASK_KINDS:
            problems.append(f"{where}: unknown task (known: {', '.join(TASK_KINDS)})")
            continue
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("corpus") not in corpora:
            problems.append(f"{where}: 'corpus' must name one of the corpora ({', '.join(corpora) or 'none'})")
        unknown = sorted(set(entry) - _TASK_OPTION_KEYS - {"corpus"})
        if unknown:
            problems.append(
                f"{where}: unknown key(s) {', '.join(unknown)} (known: corpus, {', '.join(sorted(_TASK_OPTION_KEYS))})"
            )
            continue
        options = {key: value for key, value in entry.items() if key != "corpus"}
        if isinstance(options.get("silence_labels"), list):
            options["silence_labels"] = tuple(options["silence_labels"])
        try:
            tasks[name] = (entry.get("corpus"), TaskOptions(task=name, seed=seed, **options))
        except (TypeError, ValueError) as error:
            problems.append(f"{where}: {error}")
    return tasks


def _probes(section, problems):
    known = known_probe_kinds()
    if not isinstance(section, list) or not section:
        problems.append(f"probes must be a non-empty list of probe kinds ({', '.join(known)})")
        return ("linear",)
    unknown = [probe for probe in section if probe not in known]
    if unknown:
        problems.append(f"probes: unknown kind(s) {', '.join(map(str, unknown))} (known: {', '.join(known)})")
    if section[0] == FINETUNE:
        problems.append("probes: the first kind ranks the leaderboard and must be a cached-feature probe, not finetune")
    return tuple(dict.fromkeys(section))


def _extraction(section, problems):
    if not isinstance(section, dict):
        problems.append("extraction must be a mapping {slicing, dtype, batch_size}")
        return dict(EXTRACTION_DEFAULTS)
    unknown = sorted(set(section) - set(EXTRACTION_DEFAULTS))
    if unknown:
        problems.append(f"extraction: unknown key(s) {', '.join(unknown)} (known: {', '.join(EXTRACTION_DEFAULTS)})")
    extraction = {**EXTRACTION_DEFAULTS, **{key: section[key] for key in section if key in EXTRACTION_DEFAULTS}}
    if extraction["slicing"] not in ("feature", "audio"):
        problems.append(f"extraction.slicing must be feature or audio, got {extraction['slicing']!r}")
    if extraction["dtype"] not in ("float32", "float16"):
        problems.append(f"extraction.dtype must be float32 or float16, got {extraction['dtype']!r}")
    if not isinstance(extraction["batch_size"], int) or extraction["batch_size"] < 1:
        problems.append(f"extraction.batch_size must be an integer >= 1, got {extraction['batch_size']!r}")
    return extraction
