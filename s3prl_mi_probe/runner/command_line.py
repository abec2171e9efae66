"""The default config that s3prl's ``run_downstream.py`` cannot find for ``-d mi_probe``.

Without ``-c``, s3prl reads ``./downstream/<downstream>/config.yaml`` relative to the working
directory, which for ``-d mi_probe`` exists nowhere. When the running program is
``run_downstream.py`` (``python -m s3prl.run_downstream`` or the script of an s3prl source checkout),
the import hook calls :func:`complete_run_downstream_arguments` while that program imports s3prl's
runner, before its ``main()`` parses ``sys.argv``: a new ``-d mi_probe`` experiment without ``-c``
gets ``-c`` with the shipped config of its task (``phone``, or ``word`` when ``-o`` sets
``config.downstream_expert.task=word``), and stdout says which. Resuming (``-e``) takes the config
from the checkpoint, as s3prl does; nothing else on the command line changes.
"""

import argparse
import os
import sys

from s3prl_mi_probe.runner.patches import DOWNSTREAM_NAME
from s3prl_mi_probe.runner.shipped_configs import config_path

_TASK_OVERRIDE = "config.downstream_expert.task"


def running_run_downstream():
    """Whether this process is running s3prl's ``run_downstream.py`` as its program."""
    main = sys.modules.get("__main__")
    return os.path.basename(getattr(main, "__file__", None) or "") == "run_downstream.py"


def complete_run_downstream_arguments(argv=None):
    """Add ``-c <shipped config>`` to a ``run_downstream.py -d mi_probe`` command line that lacks it.

    ``argv`` defaults to ``sys.argv`` of a running ``run_downstream.py`` (any other program is left
    alone) and is changed in place; returns the config path added, or None.
    """
    if argv is None:
        if not running_run_downstream():
            return None
        argv = sys.argv
    # Only the options that matter here, spelled out in full (s3prl also takes abbreviations: an
    # abbreviated one is simply not completed); everything else passes through untouched.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for short, long in (("-d", "--downstream"), ("-c", "--config"), ("-e", "--past_exp"), ("-o", "--override")):
        parser.add_argument(short, long)
    args, _ = parser.parse_known_args(argv[1:])
    if args.downstream != DOWNSTREAM_NAME or args.config is not None or args.past_exp is not None:
        return None
    task = _task_from_override(args.override)
    path = str(config_path(task))
    argv += ["-c", path]
    print(f"[mi_probe] no -c given: using the shipped {task} config {path}", flush=True)
    return path


def _task_from_override(override):
    """``word`` when s3prl's ``-o`` string sets the task to word, else ``phone``."""
    for item in (override or "").split(",,"):
        key, _, value = item.partition("=")
        if key.strip() == _TASK_OVERRIDE and value.strip().strip("'\"") == "word":
            return "word"
    return "phone"
