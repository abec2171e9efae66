"""``s3prl-mi-probe compare``: several sweep folders side by side."""

from pathlib import Path


def register_compare_command(commands):
    """Add ``compare`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    compare = commands.add_parser("compare", help="side-by-side report of several sweep folders")
    compare.add_argument("sweeps", nargs="+", type=Path, metavar="DIR")
    compare.add_argument("--out", type=Path, required=True)
    compare.set_defaults(handler=_compare)


def _compare(args):
    from s3prl_mi_probe.report.compare import compare_sweeps

    outputs = compare_sweeps(args.sweeps, args.out)
    print(f"wrote {outputs['markdown']}, {outputs['csv']} and plots under {args.out / 'plots'}")
    return 0
