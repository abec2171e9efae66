"""What the command line of s3prl's ``run_downstream.py`` lacks on today's torch and for ``-d mi_probe``.

When the running program is ``run_downstream.py`` (``python -m s3prl.run_downstream`` or the script
of an s3prl source checkout), the import hook calls :func:`complete_run_downstream_arguments` and
:func:`check_new_experiment` while that program imports s3prl's runner, before its ``main()`` parses
``sys.argv``:

* The local rank. s3prl's parser knows ``--local_rank`` only, but torch >= 2.0's
  ``torch.distributed.launch`` passes ``--local-rank=N`` (which s3prl would refuse) and ``torchrun``
  passes none (s3prl would then train K independent copies instead of one DDP run): the first is
  respelled ``--local_rank``, the second gets ``--local_rank $LOCAL_RANK``. Any downstream.
* The config, for ``-d mi_probe`` only. Without ``-c``, s3prl reads
  ``./downstream/<downstream>/config.yaml`` relative to the working directory, which for
  ``mi_probe`` exists nowhere: a new experiment without ``-c`` gets ``-c`` with the shipped config of
  its task (the task ``-o`` sets with ``config.downstream_expert.task=...``, else ``phone``), and
  stdout says which. Resuming (``-e``) takes the config from the checkpoint, as s3prl does.
* The early check, for a new ``-d mi_probe`` training run only. s3prl creates the experiment folder
  and writes ``args_*.yaml`` and ``config_*.yaml`` into it before it builds the expert, which checks
  the manifest: the config is read here as s3prl will read it (``-c``, then ``-o`` through s3prl's own
  ``override``: :func:`~s3prl_mi_probe.toolkit.runner_config.read_runner_config`) and its
  ``downstream_expert`` checked (:func:`~s3prl_mi_probe.runner.expert_config.check_expert_config`), so
  that bad input stops the run with one message before s3prl writes anything. A resumed run (``-e``, or
  ``-a`` on a folder with checkpoints) and ``-m evaluate`` take their config from a checkpoint: the
  expert checks it when s3prl builds it, after those files are written.

Nothing else on the command line changes.
"""

import argparse
import glob
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


def _options(argv):
    """The options of a ``run_downstream.py`` command line that matter here, as s3prl would parse them."""
    # Spelled out in full (s3prl also takes abbreviations: an abbreviated one is simply not seen here);
    # everything else passes through untouched.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for short, long in (
        ("-m", "--mode"),
        ("-d", "--downstream"),
        ("-c", "--config"),
        ("-e", "--past_exp"),
        ("-o", "--override"),
        ("-n", "--expname"),
        ("-p", "--expdir"),
    ):
        parser.add_argument(short, long)
    parser.add_argument("-a", "--auto_resume", action="store_true")
    return parser.parse_known_args(argv[1:])[0]


def _add_shipped_config(argv):
    """``-c <shipped config>`` for a new ``-d mi_probe`` experiment without ``-c``."""
    args = _options(argv)
    if args.downstream != DOWNSTREAM_NAME or args.config is not None or args.past_exp is not None:
        return
    task_name = _task_from_override(args.override)
    path = str(config_path(task_name))
    argv += ["-c", path]
    print(f"[mi_probe] no -c given: using the shipped {task_name} config {path}", flush=True)


def _new_experiment(args):
    """Whether s3prl starts a new experiment (not resuming one from a checkpoint), as its own rules say."""
    if args.past_exp is not None:
        return False
    expdir = args.expdir or f"result/downstream/{args.expname}"
    return not (args.auto_resume and glob.glob(f"{expdir}/states-*.ckpt"))


def check_new_experiment(argv=None):
    """For a new ``-d mi_probe`` training run: read its config as s3prl will, and check its ``downstream_expert``
    before s3prl writes anything; SystemExit with the one-line report (every corpus problem listed) if unusable.

    ``argv`` defaults to ``sys.argv`` of a running ``run_downstream.py`` (completed by
    :func:`complete_run_downstream_arguments`; any other program is left alone). A config s3prl cannot
    read or override is left to s3prl to report.
    """
    if argv is None:
        if not running_run_downstream():
            return
        argv = sys.argv
    args = _options(argv)
    if args.downstream != DOWNSTREAM_NAME or args.mode != "train" or args.config is None or not _new_experiment(args):
        return
    from s3prl_mi_probe.runner.expert_config import check_before_run
    from s3prl_mi_probe.toolkit.runner_config import read_runner_config

    config = read_runner_config(args.config, args.override)
    if config is None:
        return
    try:
        check_before_run(config.get("downstream_expert") or {})
    except ValueError as error:
        raise SystemExit(f"[mi_probe] {error}") from None


def _task_from_override(override):
    """The task that s3prl's ``-o`` string sets when it is one with a shipped config, else ``phone``."""
    for item in (override or "").split(",,"):
        key, _, value = item.partition("=")
        task_name = value.strip().strip("'\"")
        if key.strip() == _TASK_OVERRIDE and config_path(task_name).is_file():
            return task_name
    return "phone"
