"""CPU and memory of a process tree (a server and everything it started), sampled by psutil.

``TreeSampler(pid)`` watches ``pid`` and all its descendants (Ray's raylet, GCS, workers and
replicas are descendants of the process that called ``ray.init``). Between ``start()`` and
``stop()`` it reports:

* ``cpu_cores``: CPU seconds used by the tree per wall second (1.0 = one core busy);
* ``peak_rss_mb``: the largest sum of resident memory over the tree seen while sampling;
* ``rss_start_mb`` / ``rss_end_mb``: the sum at start and at stop.

RSS sums count pages shared between processes (shared libraries, Ray's object store) once
per process, so they overstate a multi-process server somewhat; :func:`tree_pss_mb` gives
the proportional set size (shared pages split between their users) for idle snapshots.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

_MB = 1024 * 1024


def _tree(root: psutil.Process, *, children: bool = True) -> list[psutil.Process]:
    if not children:
        return [root]
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MiB."""
    return _rss(_tree(psutil.Process(pid))) / _MB


def tree_breakdown_mb(pid: int) -> dict[str, float]:
    """RSS in MiB of each process of the tree, keyed by a short name (Ray actors by their
    ``ray::`` title, others by executable and pid)."""
    out: dict[str, float] = {}
    for process in _tree(psutil.Process(pid)):
        try:
            argv = process.cmdline()
            title = argv[0] if argv and argv[0].startswith("ray::") else ""
            name = title.split(" ")[0] or f"{process.name()}[{process.pid}]"
            out[name] = round(out.get(name, 0.0) + process.memory_info().rss / _MB, 1)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of ``pid`` and its descendants, in MiB (shared pages split)."""
    total = 0
    for process in _tree(psutil.Process(pid)):
        try:
            total += getattr(process.memory_full_info(), "pss", 0)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / _MB


def tree_size(pid: int) -> int:
    """How many processes the tree has."""
    return len(_tree(psutil.Process(pid)))


@dataclass
class TreeStats:
    wall_s: float
    cpu_cores: float
    peak_rss_mb: float
    rss_start_mb: float
    rss_end_mb: float

    def as_dict(self) -> dict[str, Any]:
        return {key: round(value, 3) for key, value in asdict(self).items()}


class TreeSampler:
    """Samples the tree's RSS every ``interval_s`` in a thread; CPU from start/stop deltas."""

    def __init__(self, pid: int, *, interval_s: float = 0.25, children: bool = True) -> None:
        """``children=False`` watches ``pid`` alone (the load generator, whose children are
        the servers)."""
        self._root = psutil.Process(pid)
        self._children = children
        self._interval = interval_s
        self._known: dict[int, psutil.Process] = {}
        self._cpu_seen: dict[int, float] = {}
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._rss0 = 0

    def _refresh(self) -> list[psutil.Process]:
        # Keep the same Process objects across samples (psutil caches per object), and
        # remember each process's latest CPU time so one that exits still counts.
        processes = []
        for process in _tree(self._root, children=self._children):
            known = self._known.setdefault(process.pid, process)
            processes.append(known)
            try:
                times = known.cpu_times()
                self._cpu_seen[known.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return processes

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, _rss(self._refresh()))

    def start(self) -> TreeSampler:
        processes = self._refresh()
        self._cpu0 = dict(self._cpu_seen)
        self._rss0 = _rss(processes)
        self._peak = self._rss0
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> TreeStats:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        wall = time.perf_counter() - self._t0
        rss_end = _rss(self._refresh())
        cpu = sum(seconds - self._cpu0.get(pid, 0.0) for pid, seconds in self._cpu_seen.items())
        return TreeStats(
            wall_s=wall,
            cpu_cores=cpu / wall if wall > 0 else 0.0,
            peak_rss_mb=max(self._peak, rss_end) / _MB,
            rss_start_mb=self._rss0 / _MB,
            rss_end_mb=rss_end / _MB,
        )
