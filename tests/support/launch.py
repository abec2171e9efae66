"""Running s3prl's own runner (``python -m s3prl.run_downstream``) from Python, in a subprocess (tests, benches)."""

import os
import subprocess
import sys

from s3prl_mi_probe.runner.shipped_configs import config_path


def overrides(**values):
    """s3prl's ``-o`` string from keyword pairs; ``__`` separates levels: ``runner__total_steps=10``."""
    return ",,".join(f"config.{key.replace('__', '.')}={value}" for key, value in values.items())


def short_run_overrides(manifest, steps=60, eval_step=30, **extra):
    """Overrides that turn the shipped config into a short CPU run on a small corpus."""
    values = {
        "downstream_expert__manifest": manifest,
        "downstream_expert__min_count": 2,
        "downstream_expert__num_workers": 0,
        "downstream_expert__train_batch_size": 4,
        "downstream_expert__eval_batch_size": 8,
        "runner__total_steps": steps,
        "runner__eval_step": eval_step,
        "runner__save_step": eval_step,
        "runner__log_step": 10,
        "optimizer__lr": 0.02,
    }
    return overrides(**{**values, **extra})


def run_downstream(*args, task="phone", device="cpu", cwd=None, module=True, timeout=None, env=None):
    """Run s3prl's run_downstream with the shipped config of ``task``; returns the CompletedProcess.

    ``module=False`` runs ``run_downstream.py`` from ``cwd`` (an s3prl source checkout).
    The config is left out when resuming (``-e``), where s3prl takes it from the checkpoint, and
    when ``task`` is None; ``--device`` is left out when ``device`` is None. ``env`` adds to the
    environment.
    """
    entry = ["-m", "s3prl.run_downstream"] if module else ["run_downstream.py"]
    command = [sys.executable, *entry, *args]
    if device is not None:
        command += ["--device", device]
    if task is not None and "-e" not in args:
        command += ["-c", str(config_path(task))]
    environment = None if env is None else {**os.environ, **env}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment)
