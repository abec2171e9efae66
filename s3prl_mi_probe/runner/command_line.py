"""What the command line of s3prl's ``run_downstream.py`` lacks on today's torch and for ``-d mi_probe``.

When the running program is ``run_downstream.py`` (``python -m s3prl.run_downstream`` or the script
of an s3prl source checkout), the import hook calls :func:`complete_run_downstream_arguments` while
that program imports s3prl's runner, before its ``main()`` parses ``sys.argv``:

* The local rank. s3prl's parser knows ``--local_rank`` only, but torch >= 2.0's
  ``torch.distributed.launch`` passes ``--local-rank=N`` (which s3prl would refuse) and ``torchrun``
  passes none (s3prl would then train K independent copies instead of one DDP run): the first is
  respelled ``--local_rank``, the second gets ``--local_rank $LOCAL_RANK``. Any downstream.
* The config, for ``-d mi_probe`` only. Without ``-c``, s3prl reads
  ``./downstream/<downstream>/config.yaml`` relative to the working directory, which for
  ``mi_probe`` exists nowhere: a new experiment without ``-c`` gets ``-c`` with the shipped config of
  its task (the task ``-o`` sets with ``config.downstream_expert.task=...``, else ``phone``), and
  stdout says which. Resuming (``-e``) takes the config from the checkpoint, as s3prl does.

Nothing else on the command line changes.
"""

import argparse
import os
import sys

from s3prl_mi_probe.runner.patches import DOWNSTREAM_NAME
from s3prl_mi_probe.runner.shipped_configs import config_path

_TASK_OVERRIDE = "config.downstream_expert.task"
_DASHED_LOCAL_RANK = "--local-rank"


def running_run_downstream():
    """Whether this process is running s3prl's ``run_downstream.py`` as its program."""
    main = sys.modules.get("__main__")
    return os.path.basename(getattr(main, "__file__", None) or "") == "run_downstream.py"


def complete_run_downstream_arguments(argv=None, environ=None):
    """Complete a ``run_downstream.py`` command line (see the module docstring), in place.

    ``argv`` defaults to ``sys.argv`` of a running ``run_downstream.py`` (any other program is left
    alone), ``environ`` to ``os.environ``.
    """
    if argv is None:
        if not running_run_downstream():
            return
        argv = sys.argv
    _spell_local_rank(argv, os.environ if environ is None else environ)
    _add_shipped_config(argv)


def _spell_local_rank(argv, environ):
    """``--local-rank`` as s3prl spells it; torchrun's ``LOCAL_RANK`` as ``--local_rank``."""
    for index, argument in enumerate(argv):
        if argument == _DASHED_LOCAL_RANK or argument.startswith(_DASHED_LOCAL_RANK + "="):
            argv[index] = "--local_rank" + argument[len(_DASHED_LOCAL_RANK) :]
    given = any(argument == "--local_rank" or argument.startswith("--local_rank=") for argument in argv)
    if not given and "LOCAL_RANK" in environ and int(environ.get("WORLD_SIZE", "1")) > 1:
        argv += ["--local_rank", environ["LOCAL_RANK"]]


def _add_shipped_config(argv):
    """``-c <shipped config>`` for a new ``-d mi_probe`` experiment without ``-c``."""
    # Only the options that matter here, spelled out in full (s3prl also takes abbreviations: an
    # abbreviated one is simply not completed); everything else passes through untouched.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for short, long in (("-d", "--downstream"), ("-c", "--config"), ("-e", "--past_exp"), ("-o", "--override")):
        parser.add_argument(short, long)
    args, _ = parser.parse_known_args(argv[1:])
    if args.downstream != DOWNSTREAM_NAME or args.config is not None or args.past_exp is not None:
        return
    task = _task_from_override(args.override)
    path = str(config_path(task))
    argv += ["-c", path]
    print(f"[mi_probe] no -c given: using the shipped {task} config {path}", flush=True)


def _task_from_override(override):
    """The task that s3prl's ``-o`` string sets when it is one with a shipped config, else ``phone``."""
    for item in (override or "").split(",,"):
        key, _, value = item.partition("=")
        task = value.strip().strip("'\"")
        if key.strip() == _TASK_OVERRIDE and config_path(task).is_file():
            return task
    return "phone"
