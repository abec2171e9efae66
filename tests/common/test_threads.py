"""The CPU share and the OpenMP wait policy a probing process takes."""

import os
import subprocess
import sys

import pytest


def _threads_in_child(cpus, env):
    """``torch.get_num_threads()`` after :func:`use_cpu_share` in a fresh process pinned to ``cpus``."""
    code = "from s3prl_mi_probe.common.threads import use_cpu_share; print(use_cpu_share())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_threads_follow_the_cpus_the_process_may_use_shared_among_ranks():
    cpus = sorted(os.sched_getaffinity(0))
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE")}
    assert _threads_in_child({cpus[0]}, env) == 1
    assert _threads_in_child(set(cpus), env) == len(cpus)
    assert _threads_in_child(set(cpus), {**env, "LOCAL_WORLD_SIZE": str(len(cpus))}) == 1
    # torchrun's own OMP_NUM_THREADS=1 gives way to the rank's share; a user's setting does not.
    assert _threads_in_child(set(cpus), {**env, "LOCAL_WORLD_SIZE": "1", "OMP_NUM_THREADS": "1"}) == len(cpus)
    assert _threads_in_child(set(cpus), {**env, "OMP_NUM_THREADS": "1"}) == 1


def test_the_command_line_waits_passively_unless_told_otherwise():
    code = (
        "import os, sys\n"
        "from s3prl_mi_probe.cli import main\n"
        "assert 'torch' not in sys.modules  # the policy is read when torch loads OpenMP\n"
        "main(['config', 'phone'])\n"
        "print(os.environ['OMP_WAIT_POLICY'])\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        run_env = env if given is None else {**env, "OMP_WAIT_POLICY": given}
        result = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True)
        assert result.stdout.splitlines()[-1] == expected
