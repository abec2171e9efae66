"""Option groups and argument types shared by several subcommands: the task's segment filters,
comma lists, upstream specifications, existing folders."""

import argparse
from pathlib import Path

from s3prl_mi_probe.corpus.task import TASK_DEFAULT, TaskOptions, describe_task_default


def comma_list(values):
    """Items of repeated and/or comma-separated option values, in order (a string or a list of strings)."""
    values = [values] if isinstance(values, str) else values
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def class_cap(text):
    """``--max-classes``: a number of classes, or ``all`` for no cap (None)."""
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of classes or 'all', got {text!r}") from None


def upstream_argument(text):
    """``--upstream``: an UpstreamSpec, or a usage error saying what is wrong with the text."""
    from s3prl_mi_probe.features.upstream_spec import UpstreamSpec

    try:
        return UpstreamSpec.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def existing_folder(text):
    """A folder argument that must exist."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {text!r}" + (" (it is a file)" if path.exists() else ""))
    return path


def add_task_filter_options(parser):
    """The class and segment filters; the class filters' defaults depend on the task (``TASK_DEFAULTS``,
    the same for sweep, stats and the runner)."""
    defaults = TaskOptions()
    parser.add_argument(
        "--min-count",
        type=int,
        default=TASK_DEFAULT,
        metavar="N",
        help=f"a class needs N training segments (default per task: {describe_task_default('min_count')})",
    )
    parser.add_argument(
        "--max-classes",
        type=class_cap,
        default=TASK_DEFAULT,
        metavar="N|all",
        help=f"keep the N most frequent classes (default per task: {describe_task_default('max_classes')})",
    )
    parser.add_argument(
        "--fold-stress",
        action=argparse.BooleanOptionalAction,
        default=TASK_DEFAULT,
        help=f"ARPAbet stress folding, AH0 -> AH (default per task: {describe_task_default('fold_stress')})",
    )
    parser.add_argument(
        "--min-duration", type=float, default=defaults.min_duration, metavar="SECONDS", help="shortest segment kept"
    )
    parser.add_argument(
        "--max-duration", type=float, default=defaults.max_duration, metavar="SECONDS", help="segments kept are shorter"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds dev carving (and a sweep's probes)")
    parser.add_argument(
        "--frames-per-utterance",
        type=int,
        metavar="K",
        help="frame tasks: a seeded random K of each utterance's labelled 10 ms frames (default: all)",
    )


def task_options(args):
    """The TaskOptions of parsed arguments that carry ``--task`` and :func:`add_task_filter_options`."""
    return TaskOptions(
        task=args.task,
        min_count=args.min_count,
        max_classes=args.max_classes,
        fold_stress=args.fold_stress,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        seed=args.seed,
        frames_per_utterance=args.frames_per_utterance,
    )
