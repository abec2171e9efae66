"""s3prl's real runner for the tests: fails loudly, and reads what a run wrote."""

import json

import pytest

from s3prl_mi_probe.runner.command_line import check_new_experiment
from s3prl_mi_probe.runner.shipped_configs import config_path
from tests.support import launch as s3prl_run
from tests.support.launch import short_run_overrides

__all__ = ["metrics_rows", "refusal_before_training", "run_downstream", "short_run_overrides", "train_mi_probe"]


def run_downstream(*args, check=True, **kwargs):
    """``s3prl_run.run_downstream`` that raises with the runner's stderr when it fails and ``check``."""
    result = s3prl_run.run_downstream(*args, timeout=900, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"run_downstream failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def _training_arguments(expdir, manifest, *upstream, **overrides):
    """``-m train UPSTREAM -d mi_probe -p EXPDIR -o OVERRIDES``: a short run on ``manifest``
    (:func:`short_run_overrides` with ``overrides``)."""
    return [
        "-m",
        "train",
        *upstream,
        "-d",
        "mi_probe",
        "-p",
        str(expdir),
        "-o",
        short_run_overrides(manifest, **overrides),
    ]


def train_mi_probe(expdir, manifest, *upstream, task="phone", steps=60, check=True, **overrides):
    """``run_downstream.py -m train -d mi_probe`` on ``manifest`` into ``expdir``: a short run (``steps``) with
    the config ``overrides`` (``downstream_expert__control="speaker"`` sets ``downstream_expert.control``)."""
    arguments = _training_arguments(expdir, manifest, *upstream, steps=steps, **overrides)
    return run_downstream(*arguments, task=task, check=check)


def refusal_before_training(expdir, manifest, *upstream, task="phone", **overrides):
    """The one line with which a new ``-d mi_probe`` training run of :func:`train_mi_probe`'s command line stops
    before s3prl writes anything: the check the import hook runs, here in this process (the subprocess tests
    keep one refusal per kind: a bad config value, bad corpus files)."""
    argv = ["run_downstream.py", *_training_arguments(expdir, manifest, *upstream, **overrides)]
    argv += ["-c", str(config_path(task))]
    with pytest.raises(SystemExit) as refused:
        check_new_experiment(argv)
    assert not expdir.exists()
    return str(refused.value.code)


def metrics_rows(expdir):
    """Rows of ``EXPDIR/metrics.jsonl``."""
    with open(expdir / "metrics.jsonl") as stream:
        return [json.loads(line) for line in stream]
