"""How this process computes on CPUs shared with other work: its share of the CPUs, waiting without spinning.

torch starts with one intra-op thread per core of the machine, whatever the process may actually
use (a cgroup CPU set, ``taskset``, a cluster job's allocation) and however many torchrun ranks share
the machine. More threads than CPUs make every parallel kernel wait on descheduled threads.

OpenMP's threads also spin while they wait for each other at the end of every parallel kernel. On
an idle machine that saves a wake-up; on a shared one the spinning thread burns the time slice its
descheduled partner needs, and a probe run measured 5x slower beside two busy processes than with
passive waiting (bench/time_to_bound.py). The policy is read once, when torch loads OpenMP.
"""

import os


def available_cpus():
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_share(processes=None):
    """This process's share of :func:`available_cpus`, at least 1: divided among the ``processes`` that share
    the machine (default: torchrun's ``LOCAL_WORLD_SIZE``, 1 without torchrun)."""
    if processes is None:
        processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, available_cpus() // max(1, processes))


def wait_passively():
    """Let OpenMP threads sleep rather than spin while they wait (``OMP_WAIT_POLICY=PASSIVE``), unless the
    environment already chooses; takes effect only if torch has not been imported yet."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def use_cpu_share():
    """Set torch's intra-op threads to :func:`cpu_share`, unless ``OMP_NUM_THREADS`` names a number; returns the
    number in effect.

    torchrun sets ``OMP_NUM_THREADS=1`` for its workers where the user did not set it, so under torchrun
    (``LOCAL_WORLD_SIZE`` set) a 1 there counts as unset: each rank gets its share of the CPUs.
    """
    import torch

    chosen = os.environ.get("OMP_NUM_THREADS")
    if chosen is None or (chosen == "1" and "LOCAL_WORLD_SIZE" in os.environ):
        torch.set_num_threads(cpu_share())
    return torch.get_num_threads()
