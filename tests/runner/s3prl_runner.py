"""s3prl's real runner for the tests: fails loudly, and reads what a run wrote."""

import json

from s3prl_mi_probe.runner import launch as s3prl_run
from s3prl_mi_probe.runner.launch import short_run_overrides

__all__ = ["metrics_rows", "run_downstream", "short_run_overrides"]


def run_downstream(*args, check=True, **kwargs):
    """``s3prl_run.run_downstream`` that raises with the runner's stderr when it fails and ``check``."""
    result = s3prl_run.run_downstream(*args, timeout=900, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"run_downstream failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def metrics_rows(expdir):
    """Rows of ``EXPDIR/metrics.jsonl``."""
    with open(expdir / "metrics.jsonl") as stream:
        return [json.loads(line) for line in stream]
