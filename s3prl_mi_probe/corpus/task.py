"""The labelled segments (phones or words) of a probing task, checked, filtered and split."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from praatio import textgrid

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.corpus.frames import frame_segments
from s3prl_mi_probe.corpus.manifest import SPLITS, Utterance, parse_manifest
from s3prl_mi_probe.corpus.reader import interval_tiers, open_textgrid, read_audio_info
from s3prl_mi_probe.corpus.splits import pick_fraction
from s3prl_mi_probe.corpus.task_kinds import FRAME_TASK_NAMES, TASK_KINDS, WORD_TIER, TaskKind, task_kind

DROP_REASONS = ("silence", "too_short", "too_long", "rare_class")
AUDIO_END_TOLERANCE = 0.010  # seconds an interval may run past the audio end (it is then clipped)
_TIME_EPSILON = 1e-6  # absorbs decimal rounding of TextGrid times
_STRESS_DIGIT = re.compile(r"^([A-Za-z]+)[0-2]$")


class _TaskDefault:
    """The default of an option whose value depends on the task (its ``TaskKind.defaults``)."""

    def __repr__(self):
        return "the task's default"


TASK_DEFAULT = _TaskDefault()


def describe_task_default(name: str) -> str:
    """The tasks' defaults of one option for help texts: ``"phone 5, word 20"`` (no cap is ``all``)."""

    def show(value):
        if value is None:
            return "all"
        return ("on" if value else "off") if isinstance(value, bool) else str(value)

    return ", ".join(f"{kind.name} {show(kind.defaults[name])}" for kind in TASK_KINDS.values())


@dataclass(frozen=True)
class TaskOptions:
    """What to probe (``task``) and how segments are filtered, classes chosen and dev carved.

    ``min_count``, ``max_classes`` (None: no cap), ``fold_stress`` and ``silence_labels`` left at
    ``TASK_DEFAULT`` take the task's values (``task_kinds.TASK_KINDS``); the instance holds the resolved values.
    """

    task: str = "phone"
    min_count: int = TASK_DEFAULT
    max_classes: int | None = TASK_DEFAULT
    silence_labels: tuple = TASK_DEFAULT
    fold_stress: bool = TASK_DEFAULT
    min_duration: float = 0.025
    max_duration: float = 2.0
    seed: int = 0
    dev_fraction: float = 0.1
    frames_per_utterance: int | None = None  # frame tasks: a seeded subset of each utterance's frames

    def __post_init__(self):
        for name, value in task_kind(self.task).defaults.items():
            if getattr(self, name) is TASK_DEFAULT:
                object.__setattr__(self, name, value)
        if self.min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {self.min_count}")
        if self.max_classes is not None and self.max_classes < 2:
            raise ValueError(f"max_classes must be at least 2 (no cap: null in a config), got {self.max_classes}")
        if isinstance(self.silence_labels, str) or not all(isinstance(s, str) for s in self.silence_labels):
            raise ValueError(f"silence_labels must be a sequence of strings, got {self.silence_labels!r}")
        if not 0 < self.min_duration < self.max_duration:
            raise ValueError(f"need 0 < min_duration < max_duration, got {self.min_duration} and {self.max_duration}")
        if not 0 < self.dev_fraction < 1:
            raise ValueError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")
        if self.frames_per_utterance is not None and (not self.kind.frames or self.frames_per_utterance < 1):
            raise ValueError(
                f"frames_per_utterance must be at least 1 (all frames: null in a config), and only for the frame tasks "
                f"({', '.join(FRAME_TASK_NAMES)}); got {self.frames_per_utterance} for task {self.task!r}"
            )
        object.__setattr__(self, "silence_labels", tuple(self.silence_labels))

    @property
    def kind(self) -> TaskKind:
        """The task's :class:`~s3prl_mi_probe.corpus.task_kinds.TaskKind` (tier, frame or segment, defaults)."""
        return TASK_KINDS[self.task]

    @cached_property
    def _silence_keys(self) -> frozenset[str]:
        return frozenset(label.strip().lower() for label in self.silence_labels)

    def normalize_label(self, raw: str) -> str | None:
        """Return the class label for a raw interval label, or None when it is silence."""
        label = raw.strip()
        if label.lower() in self._silence_keys:
            return None
        if self.fold_stress and self.kind.tier == "phones":
            label = _STRESS_DIGIT.sub(r"\1", label)
        return label


@dataclass
class UtteranceSegments:
    """The kept segments of one utterance: times in seconds, labels as class indices."""

    utterance: Utterance
    num_samples: int
    sample_rate: int
    starts: np.ndarray
    ends: np.ndarray
    labels: np.ndarray
    words: np.ndarray | None = None  # phone task: the word each segment lies in (None without a words tier)


@dataclass
class TaskData:
    """The segments of a task per split, the chosen classes and what was dropped."""

    options: TaskOptions
    classes: list[str]
    splits: dict[str, list[UtteranceSegments]]
    dropped: dict[str, Counter] = field(default_factory=dict)
    dev_carved: bool = False

    def label_counts(self, split: str) -> np.ndarray:
        """Number of segments of each class in ``split``, indexed like ``classes``."""
        labels = [segments.labels for segments in self.splits[split]]
        flat = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=len(self.classes))

    def provenance(self) -> dict:
        """What a result records of its task: options, classes, segments per split, what was dropped."""
        return {
            "task": asdict(self.options),
            "classes": self.classes,
            "segments": {split: int(self.label_counts(split).sum()) for split in self.splits},
            "dropped": {split: dict(counts) for split, counts in self.dropped.items()},
            "dev_carved_from_train": self.dev_carved,
        }

    def counts(self) -> dict[str, dict]:
        """Per split: ``{"segments": total, "classes": {label: count}}``."""
        summary = {}
        for split in self.splits:
            per_class = self.label_counts(split)
            summary[split] = {
                "segments": int(per_class.sum()),
                "classes": {label: int(count) for label, count in zip(self.classes, per_class)},
            }
        return summary


@dataclass
class _LabelledUtterance:
    """An utterance's segments with text labels, before classes are chosen."""

    utterance: Utterance
    num_samples: int
    sample_rate: int
    starts: np.ndarray
    ends: np.ndarray
    labels: list[str]
    words: np.ndarray | None = None


def build_task(manifest_path: str | Path, options: TaskOptions = TaskOptions()) -> TaskData:
    """Read, check, filter and split the segments of ``options.task``.

    Every utterance is checked and all problems are raised together as one
    ProblemsFound; so are splits left without usable segments or with fewer than 2 classes.
    """
    manifest_path = Path(manifest_path)
    tier_name = options.kind.tier
    utterances, problems = parse_manifest(manifest_path)
    read: list[_LabelledUtterance] = []
    for utterance in utterances:
        labelled, reasons = _read_utterance(utterance, tier_name)
        problems.extend(Problem(manifest_path.name, reason, utterance.line, utterance.id) for reason in reasons)
        if labelled is not None:
            read.append(labelled)
    if problems:
        raise ProblemsFound(manifest_path, problems)

    by_split = {split: [u for u in read if u.utterance.split == split] for split in SPLITS}
    dev_carved = not by_split["dev"]
    if dev_carved:
        by_split["train"], by_split["dev"] = _carve_dev(by_split["train"], options)

    dropped = {split: Counter(dict.fromkeys(DROP_REASONS, 0)) for split in SPLITS}
    filtered = {
        split: [_filter_segments(u, options, dropped[split]) for u in utterances]
        for split, utterances in by_split.items()
    }
    classes = _choose_classes(filtered["train"], options)
    splits = {split: _encode(utterances, classes, dropped[split]) for split, utterances in filtered.items()}
    task = TaskData(options, classes, splits, dropped, dev_carved)

    problems = _split_problems(task, {split: len(u) for split, u in by_split.items()})
    if problems:
        raise ProblemsFound(manifest_path, [Problem(manifest_path.name, reason) for reason in problems])
    return task


def _read_utterance(utterance: Utterance, tier_name: str) -> tuple[_LabelledUtterance | None, list[str]]:
    """Check an utterance's audio and alignment; return its intervals clipped to the audio, or what is wrong
    with them (each reason naming its file)."""
    reasons = []
    try:
        num_samples, sample_rate = read_audio_info(utterance.audio)
    except ProblemsFound as error:
        reasons += map(str, error.problems)
    try:
        grid = open_textgrid(utterance.alignment)
        intervals = interval_tiers(grid, utterance.alignment, [tier_name])[tier_name]
    except ProblemsFound as error:
        reasons += map(str, error.problems)
    if reasons:
        return None, reasons

    audio_end = num_samples / sample_rate
    overshoot = [i for i in intervals if i.end - audio_end > AUDIO_END_TOLERANCE + _TIME_EPSILON]
    if overshoot:
        worst = max(overshoot, key=lambda interval: interval.end)
        return None, [
            f"{utterance.alignment}: {len(overshoot)} interval(s) of tier '{tier_name}' end more "
            f"than {AUDIO_END_TOLERANCE * 1000:.0f} ms past the audio end ({audio_end:.3f} s); latest: "
            f"'{worst.label}' ends at {worst.end:.3f} s (+{(worst.end - audio_end) * 1000:.0f} ms)"
        ]
    starts = np.array([i.start for i in intervals], dtype=np.float64)
    ends = np.minimum(np.array([i.end for i in intervals], dtype=np.float64), audio_end)
    not_empty = ends > starts
    words = None
    if tier_name != WORD_TIER and WORD_TIER in grid.tierNames:
        words = _enclosing_labels(grid.getTier(WORD_TIER), (starts + ends)[not_empty] / 2)
    labelled = _LabelledUtterance(
        utterance=utterance,
        num_samples=num_samples,
        sample_rate=sample_rate,
        starts=starts[not_empty],
        ends=ends[not_empty],
        labels=[i.label for i, keep in zip(intervals, not_empty) if keep],
        words=words,
    )
    return labelled, []


def _enclosing_labels(tier, times: np.ndarray) -> np.ndarray:
    """Per time, the label of the interval of ``tier`` that contains it ('' where none does)."""
    labels = np.full(times.size, "", dtype=object)
    if isinstance(tier, textgrid.IntervalTier):
        for entry in tier.entries:
            labels[(times >= entry.start) & (times < entry.end)] = entry.label.strip()
    return labels


def _carve_dev(
    train: list[_LabelledUtterance], options: TaskOptions
) -> tuple[list[_LabelledUtterance], list[_LabelledUtterance]]:
    """Split train into (train, dev): by whole speakers when every train utterance has one
    (and there are at least 2), else by utterance. Dev is empty when train has fewer than 2 utterances."""
    rng = np.random.default_rng(options.seed)
    speakers = sorted({u.utterance.speaker for u in train if u.utterance.speaker is not None})
    if len(speakers) >= 2 and all(u.utterance.speaker is not None for u in train):
        dev_speakers = set(pick_fraction(speakers, options.dev_fraction, rng))
        is_dev = [u.utterance.speaker in dev_speakers for u in train]
    elif len(train) >= 2:
        dev_ids = set(pick_fraction([u.utterance.id for u in train], options.dev_fraction, rng))
        is_dev = [u.utterance.id in dev_ids for u in train]
    else:
        return train, []
    dev = [replace(u, utterance=replace(u.utterance, split="dev")) for u, d in zip(train, is_dev) if d]
    return [u for u, d in zip(train, is_dev) if not d], dev


def _filter_segments(utterance: _LabelledUtterance, options: TaskOptions, dropped: Counter) -> _LabelledUtterance:
    """Drop silence and out-of-bounds durations (counting why), normalising labels; frame tasks take
    the labelled 10 ms frames instead (:mod:`s3prl_mi_probe.corpus.frames`)."""
    if options.kind.frames:
        return frame_segments(utterance, options, dropped)
    keep, labels = [], []
    for start, end, raw in zip(utterance.starts, utterance.ends, utterance.labels):
        label = options.normalize_label(raw)
        duration = end - start
        if label is None:
            dropped["silence"] += 1
        elif duration < options.min_duration:
            dropped["too_short"] += 1
        elif duration >= options.max_duration:
            dropped["too_long"] += 1
        else:
            keep.append(True)
            labels.append(label)
            continue
        keep.append(False)
    mask = np.array(keep, dtype=bool)
    words = None if utterance.words is None else utterance.words[mask]
    return replace(utterance, starts=utterance.starts[mask], ends=utterance.ends[mask], labels=labels, words=words)


def _choose_classes(train: list[_LabelledUtterance], options: TaskOptions) -> list[str]:
    """Train classes with at least min_count segments, most frequent first (ties by label), at most max_classes."""
    counts = Counter(label for utterance in train for label in utterance.labels)
    frequent = sorted(
        (label for label, n in counts.items() if n >= options.min_count), key=lambda label: (-counts[label], label)
    )
    return frequent[: options.max_classes]


def _encode(utterances: list[_LabelledUtterance], classes: list[str], dropped: Counter) -> list[UtteranceSegments]:
    """Turn labels into class indices, dropping (and counting) other classes and empty utterances."""
    index_of = {label: index for index, label in enumerate(classes)}
    encoded = []
    for utterance in utterances:
        mask = np.array([label in index_of for label in utterance.labels], dtype=bool)
        dropped["rare_class"] += int((~mask).sum())
        if not mask.any():
            continue
        encoded.append(
            UtteranceSegments(
                utterance=utterance.utterance,
                num_samples=utterance.num_samples,
                sample_rate=utterance.sample_rate,
                starts=utterance.starts[mask],
                ends=utterance.ends[mask],
                labels=np.array([index_of[label] for label in utterance.labels if label in index_of], dtype=np.int64),
                words=None if utterance.words is None else utterance.words[mask],
            )
        )
    return encoded


def _split_problems(task: TaskData, utterance_counts: dict[str, int]) -> list[str]:
    """Why each needed split is unusable: no utterances, no usable segments, or fewer than 2 classes."""
    options = task.options
    problems = []
    for split in SPLITS:
        per_class = task.label_counts(split)
        dropped = ", ".join(f"{reason}={n}" for reason, n in task.dropped[split].items())
        selection = (
            f"{len(task.classes)} class(es) kept on train with min_count={options.min_count}, "
            f"max_classes={options.max_classes}"
        )
        if utterance_counts[split] == 0:
            reason = "no utterances in the manifest"
            if split == "dev" and task.dev_carved:
                reason = "no dev utterances in the manifest and too few train utterances to carve one"
            problems.append(f"split '{split}': {reason}")
        elif per_class.sum() == 0:
            problems.append(
                f"split '{split}': no usable segments in {utterance_counts[split]} utterance(s) "
                f"(dropped: {dropped}; {selection})"
            )
        elif np.count_nonzero(per_class) < 2:
            problems.append(
                f"split '{split}': only {np.count_nonzero(per_class)} class among {int(per_class.sum())} "
                f"usable segments, need at least 2 (dropped: {dropped}; {selection})"
            )
    return problems
