"""Option groups and argument types shared by several subcommands: the task's segment filters, the
probes and analyses, comma lists, upstream specifications, existing files and folders, output folders.

An argument type raises ``argparse.ArgumentTypeError``: the parser turns it into a one-line usage
error (exit 2) before any work."""

import argparse
import tempfile
from pathlib import Path

from s3prl_mi_probe.analyses.sampling import HARD_MARGIN_ROWS
from s3prl_mi_probe.cli.parser import UsageError
from s3prl_mi_probe.corpus.task import TASK_DEFAULT, TaskOptions, describe_task_default
from s3prl_mi_probe.corpus.task_kinds import FRAME_TASK_NAMES
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH
from s3prl_mi_probe.probe.memory import DEFAULT_MEMORY_BUDGET, parse_size
from s3prl_mi_probe.probe.stopping import DEFAULT_TOL_BITS


def comma_list(values):
    """Items of repeated and/or comma-separated option values, in order (a string or a list of strings)."""
    values = [values] if isinstance(values, str) else values
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def class_cap(text):
    """``--max-classes``: a number of classes (at least 2), or ``all`` for no cap (None)."""
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 2:
        raise argparse.ArgumentTypeError(f"expected a number of classes of at least 2, or 'all', got {text!r}")
    return value


def upstream_argument(text):
    """``--upstream``: an UpstreamSpec whose name s3prl's hub has, or a usage error saying what is wrong."""
    from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
    from s3prl_mi_probe.toolkit.distribution import s3prl_location

    try:
        spec = UpstreamSpec.parse(text)
        if s3prl_location() is not None:  # without s3prl the command stops on that, in one line (exit 1)
            spec.check_name()
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return spec


def existing_folder(text):
    """A folder argument that must exist."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {text!r}" + (" (it is a file)" if path.exists() else ""))
    return path


def existing_file(text):
    """A file argument that must exist (a manifest, say)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no file {text!r}" + (" (it is a folder)" if path.is_dir() else ""))
    return path


def output_folder(text):
    """A folder the command writes into (``--out``): it exists or can be created, and files can be written there.

    Checked for real, before any work, by writing and removing a file in the folder or, when it does
    not exist yet, in its nearest existing parent (where it would be created); nothing is left behind.
    """
    path = Path(text).expanduser()
    existing = path
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot create folder {text!r}: {str(existing)!r} is a file; choose a folder you can write to"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".s3prl-mi-probe-write-check-") as check:
            check.write(b"0")
            check.flush()
    except OSError as error:
        what = "write in" if existing == path else f"create {text!r} in"
        raise argparse.ArgumentTypeError(
            f"cannot {what} {str(existing)!r} ({error.strerror}); choose a folder you can write to"
        ) from None
    return path


def probe_kinds_argument(known):
    """An argument type for ``--probe``: comma-separated kinds, each one of ``known()``'s."""

    def parse(text):
        kinds = comma_list(text)
        unknown = [kind for kind in kinds if kind not in known()]
        if unknown or not kinds:
            named = ", ".join(map(repr, unknown)) or "none"
            raise argparse.ArgumentTypeError(f"unknown probe kind {named}; choose among {', '.join(known())}")
        return kinds

    return parse


def _whole_number(text, least):
    """``text`` as a whole number of at least ``least``, or a usage error saying what is wrong."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def non_negative_int(text):
    """A whole number of at least 0 (a layer)."""
    return _whole_number(text, 0)


def _number(text):
    """``text`` as a finite number, or a usage error saying what is wrong."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text):
    """A number above 0 (a duration in seconds)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative_float(text):
    """A number of at least 0 (a tolerance in bits)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def add_task_filter_options(parser):
    """The class and segment filters; the class filters' defaults depend on the task (``TaskKind.defaults``,
    the same for sweep, stats and the runner)."""
    defaults = TaskOptions()
    parser.add_argument(
        "--min-count",
        type=positive_int,
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
        "--min-duration",
        type=positive_float,
        default=defaults.min_duration,
        metavar="SECONDS",
        help="shortest segment kept",
    )
    parser.add_argument(
        "--max-duration",
        type=positive_float,
        default=defaults.max_duration,
        metavar="SECONDS",
        help="segments kept are shorter",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds dev carving (and a sweep's probes)")
    parser.add_argument(
        "--frames-per-utterance",
        type=positive_int,
        metavar="K",
        help="frame tasks: a seeded random K of each utterance's labelled 10 ms frames (default: all)",
    )


def task_options(args):
    """The TaskOptions of parsed arguments that carry ``--task`` and :func:`add_task_filter_options`.

    UsageError when they do not go together (``--min-duration`` not below ``--max-duration``,
    ``--frames-per-utterance`` on a segment task).
    """
    if not args.min_duration < args.max_duration:
        raise UsageError(f"--min-duration {args.min_duration} must be below --max-duration {args.max_duration}")
    if args.frames_per_utterance is not None and args.task not in FRAME_TASK_NAMES:
        raise UsageError(f"--frames-per-utterance applies to the frame tasks ({', '.join(FRAME_TASK_NAMES)}) only")
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
    return _whole_number(text, 1)


def _size(text):
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_probe_options(parser, kinds, kinds_help, control_help, control_choices=None):
    """The probe and analysis options ``sweep`` and ``probe`` share: device, kinds (``kinds()``: the accepted
    ones), control, seeds, MDL, hard margin, memory budget, train subsampling."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--probe",
        action="append",
        type=probe_kinds_argument(kinds),
        metavar="KIND",
        help=f"{kinds_help}; repeat or comma-separate for several curves",
    )
    parser.add_argument(
        "--mlp-width", type=positive_int, default=DEFAULT_MLP_WIDTH, help="hidden units of mlp1/mlp2 probes"
    )
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
        "--tol-bits",
        type=non_negative_float,
        default=DEFAULT_TOL_BITS,
        metavar="BITS",
        help=f"a probe stops once its dev bound has not gained this many bits for a few rounds "
        f"(default {DEFAULT_TOL_BITS:g}; 0 trains until any gain stops)",
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
    """The :class:`~s3prl_mi_probe.probing.settings.ProbeSettings` fields of :func:`add_probe_options`'s arguments."""
    return {
        "hard_margin_rows": args.hard_margin_rows,
        "device": args.device,
        "probes": tuple(kind for kinds in args.probe or [[default_kind]] for kind in kinds),
        "mlp_width": args.mlp_width,
        "control": args.control,
        "seeds": args.seeds,
        "mdl": args.mdl,
        "hard_margin": args.hard_margin,
        "memory_budget": args.memory_budget,
        "tol_bits": args.tol_bits,
        "max_train_segments": args.max_train_segments,
        "max_per_class": args.max_per_class,
        "seed": args.seed,
    }
