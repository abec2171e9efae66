"""Runs s3prl's real runner (``python -m s3prl.run_downstream``) in a subprocess for the tests."""

import json
import subprocess
import sys

from s3prl_mi_probe.cli import config_path


def overrides(**values):
    """s3prl's ``-o`` string: ``config.<section>.<key>=value`` pairs joined by ``,,``."""
    return ",,".join(f"config.{key.replace('__', '.')}={value}" for key, value in values.items())


def short_run_overrides(manifest, steps=60, eval_step=30, **extra):
    """Overrides for a test-sized run of the shipped config on a test corpus."""
    return overrides(
        downstream_expert__manifest=manifest,
        downstream_expert__min_count=2,
        downstream_expert__num_workers=0,
        downstream_expert__train_batch_size=4,
        downstream_expert__eval_batch_size=8,
        runner__total_steps=steps,
        runner__eval_step=eval_step,
        runner__save_step=eval_step,
        runner__log_step=10,
        optimizer__lr=0.02,
        **extra,
    )


def run_downstream(*args, task="phone", cwd=None, module=True, check=True):
    """Run s3prl's run_downstream on CPU with the shipped config of ``task``; returns the process."""
    entry = ["-m", "s3prl.run_downstream"] if module else ["run_downstream.py"]
    command = [sys.executable, *entry, *args, "--device", "cpu"]
    if "-e" not in args:
        command += ["-c", str(config_path(task))]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"run_downstream failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def metrics_rows(expdir):
    """Rows of ``EXPDIR/metrics.jsonl``."""
    with open(expdir / "metrics.jsonl") as stream:
        return [json.loads(line) for line in stream]
