"""Peak memory of this process while a block of code runs (Linux ``/proc/self/status``), for tests and benches.

``VmHWM`` is the kernel's exact high-water mark of the resident set (anonymous memory plus mapped
files); ``RssAnon`` is what the process itself holds (heap, tensors), sampled every few
milliseconds by a thread, since the kernel keeps no high-water mark for it.
"""

import threading
import time

STATUS = "/proc/self/status"


def status_bytes(field):
    """A ``kB`` field of /proc/self/status (e.g. ``RssAnon``, ``VmHWM``) in bytes."""
    with open(STATUS) as stream:
        for line in stream:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(f"{STATUS} has no field {field}")


class PeakMemory:
    """Context manager: ``baseline_anon``, ``peak_anon`` (sampled RssAnon) and ``baseline_hwm``, ``peak_hwm`` (bytes).

    The growth of the high-water mark, ``peak_hwm - baseline_hwm``, is exact only when the block
    raises the process's peak; ``peak_anon - baseline_anon`` is what the block itself added.
    """

    def __init__(self, interval=0.002):
        self.interval = interval
        self._running = False

    def __enter__(self):
        self.baseline_anon = self.peak_anon = status_bytes("RssAnon")
        self.baseline_hwm = status_bytes("VmHWM")
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak_anon = max(self.peak_anon, status_bytes("RssAnon"))
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak_anon = max(self.peak_anon, status_bytes("RssAnon"))
        self.peak_hwm = status_bytes("VmHWM")
        return False

    def report(self):
        """The four numbers as a dict (bytes)."""
        names = ("baseline_anon", "peak_anon", "baseline_hwm", "peak_hwm")
        return {name: getattr(self, name) for name in names}
