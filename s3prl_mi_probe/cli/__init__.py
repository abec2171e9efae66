"""The ``s3prl-mi-probe`` command: one module per subcommand, shared option groups in :mod:`.options`.

Takes the command line, gives exit codes: 0, or a one-line message for ``sys.exit``. Building the
parser imports no torch; each handler imports the stage it drives.
"""

import argparse
import sys

from s3prl_mi_probe.cli.compare import register_compare_command
from s3prl_mi_probe.cli.config import register_config_command
from s3prl_mi_probe.cli.corpus import register_corpus_commands
from s3prl_mi_probe.cli.demo import register_demo_command
from s3prl_mi_probe.cli.probe import register_probe_command
from s3prl_mi_probe.cli.sweep import register_sweep_command
from s3prl_mi_probe.cli.synth import register_synth_command


def build_parser():
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="s3prl-mi-probe",
        description="Layer-wise mutual-information bounds and margins for s3prl upstreams.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    register_config_command(commands)
    register_sweep_command(commands)
    register_probe_command(commands)
    register_corpus_commands(commands)
    register_synth_command(commands)
    register_compare_command(commands)
    register_demo_command(commands)
    return parser


def main(argv=None):
    """Entry point of ``s3prl-mi-probe`` and ``python -m s3prl_mi_probe``."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
