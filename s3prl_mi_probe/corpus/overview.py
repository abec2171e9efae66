"""What a manifest holds per task and split: the printout of every recipe."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.task import TaskData, TaskOptions, build_task
from s3prl_mi_probe.corpus.task_kinds import TASK_KINDS

# The segment tasks: a frame task reads the phones tier the phone task already checks.
PERMISSIVE_OPTIONS = {
    name: TaskOptions(task=name, min_count=1, max_classes=None) for name, kind in TASK_KINDS.items() if not kind.frames
}
SUMMARY_COLUMNS = ["task", "split", "utterances", "speakers", "hours", "segments", "classes"]


def build_tasks(manifest: str | Path) -> tuple[dict[str, TaskData], list[Problem]]:
    """Build every task with permissive options (``min_count=1``, no class cap).

    Returns the tasks that build and the problems of the others, deduplicated: a problem
    every task found is listed once as is, the others' reasons start with their task.
    """
    tasks, found_by = {}, {}
    for task, options in PERMISSIVE_OPTIONS.items():
        try:
            tasks[task] = build_task(manifest, options)
        except ProblemsFound as error:
            for problem in error.problems:
                found_by.setdefault(problem, []).append(task)
    problems = [
        problem
        if len(found) == len(PERMISSIVE_OPTIONS)
        else replace(problem, reason=f"{'/'.join(found)} task: {problem.reason}")
        for problem, found in found_by.items()
    ]
    return tasks, problems


def corpus_summary(manifest: str | Path) -> str:
    """Utterances, speakers, hours, segments and classes per task and split, as a text table.

    Uses ``build_task`` with ``min_count=1``, so utterances and hours count those with at
    least one usable segment; problems that keep a task from building are listed below the table.
    """
    tasks, problems = build_tasks(manifest)
    rows = []
    for task, data in tasks.items():
        for split, utterances in data.splits.items():
            per_class = data.label_counts(split)
            carved = split == "dev" and data.dev_carved
            rows.append(
                {
                    "task": task,
                    "split": f"{split} (carved from train)" if carved else split,
                    "utterances": len(utterances),
                    "speakers": len({u.utterance.speaker for u in utterances if u.utterance.speaker}),
                    "hours": sum(u.num_samples / u.sample_rate for u in utterances) / 3600,
                    "segments": int(per_class.sum()),
                    "classes": int(np.count_nonzero(per_class)),
                }
            )
    lines = [f"{manifest}:"]
    if rows:
        lines.append(format_table(rows, SUMMARY_COLUMNS))
    if problems:
        lines.append(f"{len(problems)} problem(s) keep a task from building:")
        lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)
