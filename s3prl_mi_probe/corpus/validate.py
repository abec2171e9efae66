"""Check a manifest and every file it names for both tasks at once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.corpus.manifest import SPLITS, read_manifest
from s3prl_mi_probe.corpus.overview import build_tasks


def validate_manifest(manifest: str | Path) -> str:
    """Run the checks of ``build_task`` for the phone and word tasks (with ``min_count=1``).

    Raises one ProblemsFound with the problems of both tasks, deduplicated; returns a one-line OK summary.
    """
    tasks, problems = build_tasks(manifest)
    if problems:
        raise ProblemsFound(manifest, problems)
    per_split = Counter(utterance.split for utterance in read_manifest(manifest))
    splits = ", ".join(f"{split} {per_split[split]}" for split in SPLITS)
    per_task = "; ".join(
        f"{task}: {sum(c['segments'] for c in data.counts().values())} segments, {len(data.classes)} classes"
        for task, data in tasks.items()
    )
    return f"{manifest}: OK: {sum(per_split.values())} utterances ({splits}); {per_task}"
