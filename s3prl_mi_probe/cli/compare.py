"""``s3prl-mi-probe compare``: several sweep folders side by side."""

from s3prl_mi_probe.cli.options import existing_folder, output_folder


def register_compare_command(commands):
    """Add ``compare`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    compare = commands.add_parser(
        "compare",
        help="side-by-side report of sweep folders (same manifest, task and class filters per task)",
    )
    compare.add_argument("sweeps", nargs="+", type=existing_folder, metavar="DIR", help="folders written by sweep")
    compare.add_argument("--out", type=output_folder, required=True, help="folder for compare.md, compare.csv, plots/")
    compare.set_defaults(handler=_compare)


def _compare(args):
    from s3prl_mi_probe.report.compare import compare_sweeps

    try:
        outputs = compare_sweeps(args.sweeps, args.out)
    except (FileNotFoundError, ValueError) as error:
        return f"s3prl-mi-probe compare: {error}"
    print(f"wrote {outputs['markdown']}, {outputs['csv']} and plots under {args.out / 'plots'}")
    return 0
