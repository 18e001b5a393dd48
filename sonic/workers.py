"""An ordered ``map`` over worker processes that survives a worker killed mid-job.

``multiprocessing.Pool`` replaces a worker that dies (the out-of-memory killer's SIGKILL, a
crash in a decoder) but loses its job: ``imap`` then waits for it forever. Here the jobs run on
a :class:`concurrent.futures.ProcessPoolExecutor`, which notices the death
(``BrokenProcessPool``); the jobs that were in flight are then run again one at a time, each in
a fresh process, so the one that kills its process is found and answered by ``on_death`` — a
named error for that job — and every other job still gets its own result.
"""
from __future__ import annotations

import multiprocessing as mp
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

from sonic.runtime import _one_thread_per_worker

J = TypeVar("J")
R = TypeVar("R")


def _executor(workers: int) -> ProcessPoolExecutor:
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                               initializer=_one_thread_per_worker)


def _alone(fn: Callable[[J], R], job: J, on_death: Callable[[J], R]) -> R:
    """``fn(job)`` in a fresh process of its own; ``on_death(job)`` if that process dies."""
    with _executor(1) as pool:
        try:
            return pool.submit(fn, job).result()
        except BrokenProcessPool:
            return on_death(job)


def ordered_map(fn: Callable[[J], R], jobs: Iterable[J], workers: int,
                on_death: Callable[[J], R], ahead: int = 2) -> Iterator[R]:
    """``fn`` over ``jobs`` in ``workers`` processes, results in job order.

    At most ``ahead * workers`` jobs are in flight, so results never pile up. A job whose
    process dies gives ``on_death(job)``; the jobs in flight beside it are run again.
    """
    pending = deque(jobs)
    while pending:
        suspects: list[J] = []
        with _executor(workers) as pool:
            flight: deque[tuple[J, Future]] = deque()
            while pending or flight:
                while pending and len(flight) < ahead * workers:
                    job = pending.popleft()
                    flight.append((job, pool.submit(fn, job)))
                job, future = flight.popleft()
                try:
                    result = future.result()
                except BrokenProcessPool:
                    suspects = [job] + [j for j, _ in flight]
                    break
                yield result
        for job in suspects:  # earliest first, so the order is kept
            yield _alone(fn, job, on_death)
