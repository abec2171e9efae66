"""The probing tasks, each described once: the TextGrid tier its labels come from, whether it is a frame
task (10 ms grid frames, :mod:`~s3prl_mi_probe.corpus.frames`) or a segment task, and so how its samples
are pooled and counted, and the defaults of its class filters (what ``TaskOptions``, the command line,
the runner configs and the protocols take when a filter is left unset)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SILENCE_LABELS = ("", "sil", "sp", "spn", "<unk>", "h#", "pau", "epi", "<p:>", "(...)")
WORD_TIER = "words"


@dataclass(frozen=True)
class TaskKind:
    """A probing task: its ``name``, the ``tier`` of its labels, ``frames`` (a frame task, else a segment
    task) and its class-filter ``defaults`` (``min_count``, ``max_classes``, ``fold_stress``,
    ``silence_labels``)."""

    name: str
    tier: str
    frames: bool
    defaults: dict

    @property
    def pooling(self) -> str:
        """How a sample is pooled from an upstream's frames: ``centre`` for frames, ``mean`` for segments."""
        return "centre" if self.frames else "mean"

    @property
    def unit(self) -> str:
        """What one sample of the task is, in tables: ``frames`` or ``segments``."""
        return "frames" if self.frames else "segments"


# frame_phone scores every labelled frame, silence included, as s3prl's phone_linear does.
TASK_KINDS = {
    kind.name: kind
    for kind in (
        TaskKind(
            "phone",
            "phones",
            frames=False,
            defaults={
                "min_count": 5,
                "max_classes": None,
                "fold_stress": True,
                "silence_labels": DEFAULT_SILENCE_LABELS,
            },
        ),
        TaskKind(
            "word",
            WORD_TIER,
            frames=False,
            defaults={
                "min_count": 20,
                "max_classes": 500,
                "fold_stress": False,
                "silence_labels": DEFAULT_SILENCE_LABELS,
            },
        ),
        TaskKind(
            "frame_phone",
            "phones",
            frames=True,
            defaults={"min_count": 1, "max_classes": None, "fold_stress": True, "silence_labels": ()},
        ),
    )
}
FRAME_TASK_NAMES = tuple(name for name, kind in TASK_KINDS.items() if kind.frames)


def task_kind(task_name: str) -> TaskKind:
    """The :class:`TaskKind` called ``task_name``; ValueError naming the tasks otherwise."""
    if task_name not in TASK_KINDS:
        raise ValueError(f"unknown task {task_name!r}; expected one of {', '.join(TASK_KINDS)}")
    return TASK_KINDS[task_name]
