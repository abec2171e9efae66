"""The ``s3prl-mi-probe`` command."""

import argparse
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "downstream_configs"


def config_path(task):
    """Installed path of the runner config of a task (``phone`` or ``word``)."""
    return CONFIG_DIR / f"mi_probe_{task}.yaml"


def _print_config(args):
    print(config_path(args.task))


def _demo(args):
    from s3prl_mi_probe.demo import run_demo

    print(run_demo(args.out))


def build_parser():
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="s3prl-mi-probe",
        description="Layer-wise mutual-information bounds and margins for s3prl upstreams.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="print the installed path of a runner config (for -c)")
    config.add_argument("task", choices=["phone", "word"])
    config.set_defaults(handler=_print_config)
    demo = commands.add_parser("demo", help="the offline default job: tone corpus, fbank and a random HuBERT")
    demo.add_argument("--out", type=Path, default=Path("demo_out"))
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    """Entry point of ``s3prl-mi-probe`` and ``python -m s3prl_mi_probe``."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
