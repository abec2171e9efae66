"""How this process computes on CPUs shared with other work: its share of the CPUs, waiting without spinning.

torch starts with one intra-op thread per core of the machine, whatever the process may actually
use (a cgroup CPU set, ``taskset``, a cluster job's allocation) and however many torchrun ranks share
the machine. More threads than CPUs make every parallel kernel wait on descheduled threads.

OpenMP's threads also spin while they wait for each other at the end of every parallel kernel. On
an idle machine that saves a wake-up; on a shared one the spinning thread burns the time slice its
descheduled partner needs, and a probe run measured 5x slower beside two busy processes than with
passive waiting (bench/time_to_bound.py). The policy is read once, when torch loads OpenMP.

Waking a sleeping thread costs a system call at every parallel kernel, which a small kernel does not
repay: a full-batch fit whose pass is small runs on fewer threads (:func:`threads_for_work`).
"""

import contextlib
import os

# Multiply-adds of a full pass that repay one more intra-op thread. Measured here (2 cores, passive
# waiting; bench/threads_for_work.py on the demo's layers): linear fits of 60-1,866 rows (5-211 M
# multiply-adds a pass) ran 1.05-2.3x faster on one thread, those of 3,732 rows (317-423 M) 1.1x
# faster on two.
MULTIPLY_ADDS_PER_THREAD = 150_000_000


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


def threads_worth(multiply_adds, threads):
    """How many of ``threads`` a pass of ``multiply_adds`` repays: one per :data:`MULTIPLY_ADDS_PER_THREAD`,
    at least one."""
    return max(1, min(threads, multiply_adds // MULTIPLY_ADDS_PER_THREAD))


@contextlib.contextmanager
def threads_for_work(multiply_adds):
    """Meanwhile, torch's intra-op threads cut to :func:`threads_worth` ``multiply_adds`` (the work of one pass),
    never more than before; yields the number in effect."""
    import torch

    before = torch.get_num_threads()
    wanted = threads_worth(multiply_adds, before)
    if wanted == before:
        yield before
        return
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)
