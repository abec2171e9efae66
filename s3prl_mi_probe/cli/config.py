"""``s3prl-mi-probe config phone|word|frame_phone``: where the installed runner config is, for ``-c``."""

from s3prl_mi_probe.corpus.task_kinds import TASK_KINDS


def register_config_command(commands):
    """Add ``config`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    config = commands.add_parser("config", help="print the installed path of a runner config (for -c)")
    config.add_argument("task", choices=list(TASK_KINDS))
    config.set_defaults(handler=_print_config)


def _print_config(args):
    from s3prl_mi_probe.runner.shipped_configs import config_path

    print(config_path(args.task))
    return 0
