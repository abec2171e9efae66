"""Option groups and argument types shared by several subcommands: the task's segment filters, the
probes and analyses, comma lists, upstream specifications, existing folders."""

import argparse
from pathlib import Path

from s3prl_mi_probe.corpus.task import TASK_DEFAULT, TaskOptions, describe_task_default
from s3prl_mi_probe.probe.memory import DEFAULT_MEMORY_BUDGET, HARD_MARGIN_ROWS, parse_size


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


def positive_int(text):
    """A whole number of at least 1 (counts of rows, seeds, units)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _size(text):
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_probe_options(parser, kinds_help, control_help, control_choices=None):
    """The probe and analysis options ``sweep`` and ``probe`` share: device, kinds, control, seeds, MDL, hard
    margin, memory budget, train subsampling."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--probe", action="append", metavar="KIND", help=f"{kinds_help}; repeat or comma-separate for several curves"
    )
    parser.add_argument("--mlp-width", type=positive_int, default=256, help="hidden units of mlp1/mlp2 probes")
    parser.add_argument("--control", metavar="KEY", choices=control_choices, help=control_help)
    parser.add_argument(
        "--seeds", type=positive_int, default=1, help="train every probe with this many seeds (mean, std)"
    )
    parser.add_argument("--mdl", action="store_true", help="MDL online codelength and compression per layer")
    parser.add_argument(
        "--hard-margin",
        action="store_true",
        help="max-margin (Crammer-Singer) of layers whose train features are separable",
    )
    parser.add_argument(
        "--hard-margin-rows",
        type=positive_int,
        default=HARD_MARGIN_ROWS,
        metavar="N",
        help="solve the hard margin on a seeded, class-stratified subsample of at most N train rows",
    )
    parser.add_argument(
        "--memory-budget",
        type=_size,
        default=DEFAULT_MEMORY_BUDGET,
        metavar="SIZE",
        help=f"memory probe training may hold above the process's baseline, per process (e.g. 512M, 8G; "
        f"default {DEFAULT_MEMORY_BUDGET >> 30}G); larger data is streamed from disk",
    )
    parser.add_argument(
        "--max-train-segments",
        type=positive_int,
        metavar="N",
        help="train on a seeded, class-stratified subsample of at most N train segments",
    )
    parser.add_argument(
        "--max-per-class", type=positive_int, metavar="K", help="train on at most K segments of each class (seeded)"
    )


def probe_settings(args, default_kind="linear"):
    """The :class:`~s3prl_mi_probe.probing.ProbeSettings` fields of :func:`add_probe_options`'s arguments."""
    return {
        "hard_margin_rows": args.hard_margin_rows,
        "device": args.device,
        "probes": comma_list(args.probe or [default_kind]),
        "hidden_dim": args.mlp_width,
        "control": args.control,
        "seeds": args.seeds,
        "mdl": args.mdl,
        "hard_margin": args.hard_margin,
        "memory_budget": args.memory_budget,
        "max_train_segments": args.max_train_segments,
        "max_per_class": args.max_per_class,
        "seed": args.seed,
    }
