"""Peak memory of one benchmark part, read so that a parent's memory never counts.

``getrusage``'s ``ru_maxrss`` is not usable here: Linux carries the parent's peak RSS across
fork + exec into the child's figure, so every part started from a parent holding torch would
report at least the parent's size. ``VmHWM`` in ``/proc/self/status`` belongs to the process's
own address space, and the decoding workers are sampled while they run.
"""
from __future__ import annotations

import threading


def own_peak_rss_mib() -> float:
    """Peak resident memory (MiB) of this process since it started (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


class TreePeak:
    """Samples the summed RSS of this process and all its descendants every ``interval`` s in a
    background thread while the ``with`` block runs; ``peak_mib`` is the largest sum seen.

    Sampling can miss a peak shorter than the interval; it catches the steady state of worker
    pools, which is what the figure is for.
    """

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        import psutil  # a dependency of DVC

        me = psutil.Process()
        total = me.memory_info().rss
        for proc in me.children(recursive=True):
            try:
                total += proc.memory_info().rss
            except psutil.Error:  # the worker exited between listing and reading
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
