"""The CPU share and the OpenMP wait policy a probing process takes."""

import json
import os
import subprocess
import sys

import pytest


def _threads_in_a_child(cases, started_with=None):
    """``torch.get_num_threads()`` after :func:`use_cpu_share`, in one fresh process (started with the environment
    ``started_with`` adds), for each ``(cpus, environment)`` case in turn: the process pinned to ``cpus`` and its
    ``OMP_NUM_THREADS``/``LOCAL_WORLD_SIZE`` as given."""
    code = (
        "import os, sys, json\n"
        "from s3prl_mi_probe.common.threads import use_cpu_share\n"
        "for cpus, environment in json.loads(sys.argv[1]):\n"
        "    os.sched_setaffinity(0, cpus)\n"
        "    for name in ('OMP_NUM_THREADS', 'LOCAL_WORLD_SIZE'):\n"
        "        os.environ.pop(name, None)\n"
        "    os.environ.update(environment)\n"
        "    print(use_cpu_share())\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE")}
    env.update(started_with or {})
    argument = json.dumps([(sorted(cpus), environment) for cpus, environment in cases])
    result = subprocess.run(
        [sys.executable, "-c", code, argument], env=env, capture_output=True, text=True, check=True, timeout=600
    )
    return [int(line) for line in result.stdout.split()]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_threads_follow_the_cpus_the_process_may_use_shared_among_ranks():
    cpus = set(os.sched_getaffinity(0))
    cases = {
        "one CPU": ({min(cpus)}, {}, 1),
        "every CPU": (cpus, {}, len(cpus)),
        "one rank per CPU": (cpus, {"LOCAL_WORLD_SIZE": str(len(cpus))}, 1),
        # torchrun's own OMP_NUM_THREADS=1 gives way to the rank's share; a user's setting does not.
        "torchrun's 1": (cpus, {"LOCAL_WORLD_SIZE": "1", "OMP_NUM_THREADS": "1"}, len(cpus)),
    }
    threads = _threads_in_a_child([(used, environment) for used, environment, _ in cases.values()])
    assert dict(zip(cases, threads)) == {name: expected for name, (_, _, expected) in cases.items()}
    # A user's OMP_NUM_THREADS is read by torch when it starts: a process started with it keeps it.
    assert _threads_in_a_child([(cpus, {"OMP_NUM_THREADS": "1"})], started_with={"OMP_NUM_THREADS": "1"}) == [1]


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
