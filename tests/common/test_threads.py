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


def test_a_small_pass_runs_on_fewer_threads_and_gives_them_back():
    import torch

    from s3prl_mi_probe.common.threads import MULTIPLY_ADDS_PER_THREAD, threads_for_work

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        for work, expected in ((0, 1), (MULTIPLY_ADDS_PER_THREAD * 2, 2), (MULTIPLY_ADDS_PER_THREAD * 50, 3)):
            with threads_for_work(work) as threads:
                assert threads == expected == torch.get_num_threads()
            assert torch.get_num_threads() == 3
        with pytest.raises(KeyboardInterrupt), threads_for_work(0):
            raise KeyboardInterrupt
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_a_full_batch_fit_of_few_rows_trains_on_one_thread(monkeypatch):
    import numpy as np
    import torch

    from s3prl_mi_probe.probe import train
    from s3prl_mi_probe.probe.train import LayerProbes

    seen = []
    lbfgs_bank = train.lbfgs_bank

    def recorded(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return lbfgs_bank(*args, **kwargs)

    monkeypatch.setattr(train, "lbfgs_bank", recorded)
    rng = np.random.default_rng(0)
    labels = rng.integers(3, size=300)
    features = (np.eye(3)[labels] + rng.standard_normal((300, 3)))[None]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        LayerProbes(progress=False).fit((features, labels))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
