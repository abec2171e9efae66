"""Option groups shared by several subcommands: the task's segment filters, comma lists."""

from s3prl_mi_probe.corpus.task import TaskOptions


def comma_list(values):
    """Items of repeated and/or comma-separated option values, in order (a string or a list of strings)."""
    values = [values] if isinstance(values, str) else values
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def add_task_filter_options(parser):
    """``--min-count``, ``--max-classes``, ``--min-duration``, ``--max-duration``, ``--fold-stress``, ``--seed``,
    ``--frames-per-utterance``."""
    defaults = TaskOptions()
    parser.add_argument("--min-count", type=int, default=defaults.min_count)
    parser.add_argument("--max-classes", type=int, default=defaults.max_classes)
    parser.add_argument("--min-duration", type=float, default=defaults.min_duration, help="seconds")
    parser.add_argument("--max-duration", type=float, default=defaults.max_duration, help="seconds")
    parser.add_argument("--fold-stress", action="store_true", help="ARPAbet stress folding: AH0 -> AH")
    parser.add_argument("--seed", type=int, default=defaults.seed)
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
