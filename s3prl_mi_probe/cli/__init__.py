"""The ``s3prl-mi-probe`` command: one module per subcommand, shared option groups in :mod:`.options`.

Takes the command line, gives exit codes (see :mod:`.parser`): 0, a one-line usage error (exit code
2; :class:`~.parser.UsageError` from a handler too), or a one-line message for ``sys.exit`` (exit code
1; also when a command that runs upstreams finds no s3prl installed); Ctrl-C ends any subcommand with
one line and exit code 130, after which every file written is whole (they are written atomically).
Building the parser imports no torch; each handler imports the stage it drives.
"""

import sys

from s3prl_mi_probe.cli.benchmark import register_benchmark_command
from s3prl_mi_probe.cli.compare import register_compare_command
from s3prl_mi_probe.cli.config import register_config_command
from s3prl_mi_probe.cli.corpus import register_corpus_commands
from s3prl_mi_probe.cli.demo import register_demo_command
from s3prl_mi_probe.cli.doctor import register_doctor_command
from s3prl_mi_probe.cli.parser import CommandParser, UsageError, usage_message
from s3prl_mi_probe.cli.probe import register_probe_command
from s3prl_mi_probe.cli.sweep import register_sweep_command
from s3prl_mi_probe.cli.synth import register_synth_command
from s3prl_mi_probe.common.threads import wait_passively
from s3prl_mi_probe.toolkit.distribution import S3prlMissing, require_s3prl

USAGE_EXIT_CODE = 2  # as argparse exits on a usage error
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C


def build_parser():
    """The argument parser of every subcommand."""
    parser = CommandParser(
        prog="s3prl-mi-probe",
        description="Layer-wise mutual-information bounds and margins for s3prl upstreams.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_config_command(commands)
    register_sweep_command(commands)
    register_probe_command(commands)
    register_corpus_commands(commands)
    register_synth_command(commands)
    register_compare_command(commands)
    register_demo_command(commands)
    register_benchmark_command(commands)
    register_doctor_command(commands)
    return parser


def main(argv=None):
    """Entry point of ``s3prl-mi-probe`` and ``python -m s3prl_mi_probe``."""
    wait_passively()
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "needs_s3prl", False):
            require_s3prl()
        return args.handler(args)
    except UsageError as error:
        sys.stderr.write(usage_message(f"s3prl-mi-probe {args.command}", error))
        return USAGE_EXIT_CODE
    except S3prlMissing as error:
        return f"s3prl-mi-probe {args.command}: {error}"
    except KeyboardInterrupt:
        from tqdm import tqdm  # clears any progress bar, so the message gets a line of its own

        resume = getattr(args, "resume_hint", "rerun the command")
        tqdm.write(f"s3prl-mi-probe {args.command}: interrupted; every file written is whole; {resume}", sys.stderr)
        _forget_interrupt_in_string_code()
        return INTERRUPTED_EXIT_CODE


def _forget_interrupt_in_string_code():
    """Keep exit code 130 under ``python -m s3prl_mi_probe`` when Ctrl-C landed inside code run from a string.

    CPython marks an interrupt "unhandled" when it leaves a string ``exec``/``eval`` (``dataclasses`` builds
    every ``__init__`` that way, so an interrupt during an upstream's imports does), and for ``-m`` it then
    ends the process by SIGINT after our handler has run. Each string evaluation clears that mark first.
    """
    eval("None")


if __name__ == "__main__":
    sys.exit(main())
