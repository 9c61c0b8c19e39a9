"""mmserve's metrics: their names and labels, and how one run or model call is recorded.

Recorded with Ray's metrics API (``ray.serve.metrics``, Ray Serve's flavour of
``ray.util.metrics``), so they appear on Ray's Prometheus endpoint of every node (the
metrics export port) next to Ray Serve's own, with no extra server. Ray exports a metric
``mmserve_x`` as ``ray_mmserve_x`` (and a counter as ``ray_mmserve_x_total``) and adds
Serve's ``application``, ``deployment`` and ``replica`` labels to it; histogram sums are
approximate (Ray sums bucket midpoints). :data:`METRICS` is the one list of what exists: the
docs and the Grafana dashboard are checked against it.

What is recorded where (:mod:`mmserve.serve.metered`): workflow runs and their steps by the
ingress, from the trace every run reports (the engine itself never sees Ray); model calls by
the ingress' model gateway, as a step sees them. Serve's own ``ray_serve_*`` series cover the
model replicas' side (``ray_serve_actual_batch_size``, ``ray_serve_batch_execution_time_ms``).
The metric objects are made once per process, on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mmserve.errors import MmserveError
from mmserve.workflow.run.result import TraceEntry

Kind = Literal["counter", "histogram", "gauge"]

#: Milliseconds, as Serve's latency histograms: 1 ms to 2 min.
LATENCY_BUCKETS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000]
LATENCY_BUCKETS_MS += [60_000, 120_000]
BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
#: The code of a failure that is not an :class:`MmserveError` (as the HTTP API answers it),
#: and of a run or call stopped from outside (the client went away).
INTERNAL_ERROR, CANCELLED = "internal_error", "cancelled"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name in Ray (exported with Ray's ``ray_`` prefix), kind and labels."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    description: str

    @property
    def exported(self) -> str:
        """The name on the Prometheus endpoint (a counter's with ``_total``)."""
        return f"ray_{self.name}_total" if self.kind == "counter" else f"ray_{self.name}"


_W, _S, _M = ("workflow",), ("workflow", "step"), ("model", "method")
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("mmserve_workflow_runs", "counter", _W, "Workflow runs that ended."),
        MetricSpec(
            "mmserve_workflow_errors", "counter", (*_W, "code"), "Failed runs by error code."
        ),
        MetricSpec("mmserve_workflow_latency_ms", "histogram", _W, "Wall time of a run, in ms."),
        MetricSpec("mmserve_workflow_ongoing", "gauge", _W, "Runs in progress (per replica)."),
        MetricSpec(
            "mmserve_step_runs",
            "counter",
            (*_S, "status"),
            "Steps that ended, by status: ok, error, skipped, cancelled.",
        ),
        MetricSpec(
            "mmserve_step_latency_ms", "histogram", _S, "Wall time of a step that ran, in ms."
        ),
        MetricSpec(
            "mmserve_step_cache_hits", "counter", _S, "cache: true results taken from the cache."
        ),
        MetricSpec(
            "mmserve_step_cache_misses", "counter", _S, "cache: true results computed afresh."
        ),
        MetricSpec("mmserve_model_calls", "counter", _M, "Model calls made by steps."),
        MetricSpec("mmserve_model_items", "counter", _M, "Items those calls carried."),
        MetricSpec(
            "mmserve_model_errors", "counter", (*_M, "code"), "Failed model calls by error code."
        ),
        MetricSpec(
            "mmserve_model_latency_ms",
            "histogram",
            _M,
            "Wall time of a model call from the ingress (queue and batch wait included), in ms.",
        ),
        MetricSpec(
            "mmserve_model_batch_size",
            "histogram",
            _M,
            "The largest batch the items of a call rode in.",
        ),
        MetricSpec(
            "mmserve_model_ongoing", "gauge", _M, "Model calls in flight (per ingress replica)."
        ),
        MetricSpec(
            "mmserve_jobs_queued",
            "gauge",
            _W,
            "Jobs waiting in the queue (counted by each job worker at its sweep).",
        ),
        MetricSpec(
            "mmserve_job_wait_ms", "histogram", _W, "Time a job waited in the queue, in ms."
        ),
        MetricSpec(
            "mmserve_job_run_ms", "histogram", _W, "Time a job ran (its last attempt), in ms."
        ),
        MetricSpec(
            "mmserve_jobs_finished",
            "counter",
            (*_W, "status"),
            "Jobs that ended, by status: succeeded, failed, cancelled.",
        ),
    )
}


def error_code(error: BaseException) -> str:
    """The code a failure is counted under: the one the HTTP API answers with."""
    if isinstance(error, MmserveError):
        return error.code
    if isinstance(error, Exception):
        return INTERNAL_ERROR
    return CANCELLED  # CancelledError, KeyboardInterrupt: stopped, not failed


class Recorder(Protocol):
    """Where observations go: Ray's metrics in a replica (:class:`RayRecorder`)."""

    def add(self, name: str, tags: Mapping[str, str], value: float = 1.0) -> None: ...

    def observe(self, name: str, tags: Mapping[str, str], value: float) -> None: ...

    def set(self, name: str, tags: Mapping[str, str], value: float) -> None: ...


class RayRecorder:
    """:data:`METRICS` as Ray metric objects, made on first use (inside a replica, so that
    Serve's labels are added)."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _metric(self, name: str) -> Any:
        if self._objects is None:
            with self._lock:
                if self._objects is None:
                    self._objects = {spec.name: _make(spec) for spec in METRICS.values()}
        return self._objects[name]

    def add(self, name: str, tags: Mapping[str, str], value: float = 1.0) -> None:
        self._metric(name).inc(value, tags=dict(tags))

    def observe(self, name: str, tags: Mapping[str, str], value: float) -> None:
        self._metric(name).observe(value, tags=dict(tags))

    def set(self, name: str, tags: Mapping[str, str], value: float) -> None:
        self._metric(name).set(value, tags=dict(tags))


def _make(spec: MetricSpec) -> Any:
    from ray.serve import metrics  # deferred: pulls in Ray (the catalogue needs none)

    labels: Any = spec.labels  # (Ray annotates tag_keys as a 1-tuple)
    if spec.kind == "counter":
        return metrics.Counter(spec.name, description=spec.description, tag_keys=labels)
    if spec.kind == "gauge":
        return metrics.Gauge(spec.name, description=spec.description, tag_keys=labels)
    boundaries: Sequence[float] = (
        BATCH_SIZE_BUCKETS if spec.name.endswith("batch_size") else LATENCY_BUCKETS_MS
    )
    return metrics.Histogram(
        spec.name,
        description=spec.description,
        boundaries=[float(b) for b in boundaries],
        tag_keys=labels,
    )


#: The recorder of this process.
process_recorder = RayRecorder()


class Ongoing:
    """A per-process count of things in progress, kept in a gauge per label set."""

    def __init__(self, recorder: Recorder, name: str) -> None:
        self._recorder, self._name = recorder, name
        self._counts: dict[tuple[tuple[str, str], ...], int] = {}

    def change(self, tags: Mapping[str, str], delta: int) -> None:
        key = tuple(sorted(tags.items()))
        count = self._counts[key] = self._counts.get(key, 0) + delta
        self._recorder.set(self._name, tags, count)


class JobMetrics:
    """A job worker's observations (:class:`mmserve.jobs.worker.JobObserver`) as metrics."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._queued: set[str] = set()

    def started(self, record: Any) -> None:
        self._queued.add(record.target)  # its queue's gauge is set (to 0 if empty) next sweep
        wait_ms = max(0.0, (record.started_at or record.created_at) - record.created_at) * 1000
        self._recorder.observe("mmserve_job_wait_ms", {"workflow": record.target}, wait_ms)

    def finished(self, record: Any) -> None:
        tags = {"workflow": record.target}
        self._recorder.add("mmserve_jobs_finished", {**tags, "status": record.status})
        if record.started_at is not None and record.finished_at is not None:
            run_ms = max(0.0, record.finished_at - record.started_at) * 1000
            self._recorder.observe("mmserve_job_run_ms", tags, run_ms)

    def queue(self, queued: Mapping[str, int]) -> None:
        # workflows whose queue emptied since the last count go back to 0
        for workflow in self._queued | set(queued):
            self._recorder.set(
                "mmserve_jobs_queued", {"workflow": workflow}, queued.get(workflow, 0)
            )
        self._queued = set(queued)


def record_run(
    recorder: Recorder,
    workflow: str,
    trace: Iterable[TraceEntry],
    *,
    wall_ms: float,
    error: BaseException | None,
) -> None:
    """Record one finished run: the run, its errors, and each step of its trace."""
    tags = {"workflow": workflow}
    recorder.add("mmserve_workflow_runs", tags)
    recorder.observe("mmserve_workflow_latency_ms", tags, wall_ms)
    if error is not None:
        recorder.add("mmserve_workflow_errors", {**tags, "code": error_code(error)})
    for entry in trace:
        record_step(recorder, workflow, entry)


def record_step(recorder: Recorder, workflow: str, entry: TraceEntry) -> None:
    tags = {"workflow": workflow, "step": entry.step}
    recorder.add("mmserve_step_runs", {**tags, "status": entry.status})
    if entry.status != "skipped":
        recorder.observe("mmserve_step_latency_ms", tags, entry.wall_ms)
    hits, misses = cache_lookups(entry)
    if hits:
        recorder.add("mmserve_step_cache_hits", tags, hits)
    if misses:
        recorder.add("mmserve_step_cache_misses", tags, misses)


def cache_lookups(entry: TraceEntry) -> tuple[int, int]:
    """The cache hits and misses of a step's trace entry (a for_each step's: per item)."""
    if entry.cached is None:
        return 0, 0  # not a cached step, or no call reached the cache
    if entry.item_status is None:
        return (1, 0) if entry.cached else (0, 1)
    hits = entry.item_status.count("cached")
    # items that ran: computed afresh (an error too: it looked the cache up first)
    misses = sum(1 for status in entry.item_status if status in ("ok", "error"))
    return hits, misses


def record_model_call(
    recorder: Recorder,
    model: str,
    method: str,
    *,
    items: int,
    wall_ms: float,
    batch_size: int | None,
    error: BaseException | None,
) -> None:
    """Record one model call of a step (``items``: 1 for ``call``, the list's for a batch)."""
    tags = {"model": model, "method": method}
    recorder.add("mmserve_model_calls", tags)
    recorder.add("mmserve_model_items", tags, items)
    recorder.observe("mmserve_model_latency_ms", tags, wall_ms)
    if error is not None:
        recorder.add("mmserve_model_errors", {**tags, "code": error_code(error)})
    elif batch_size:
        recorder.observe("mmserve_model_batch_size", tags, batch_size)


__all__ = [
    "METRICS",
    "JobMetrics",
    "MetricSpec",
    "Ongoing",
    "RayRecorder",
    "Recorder",
    "cache_lookups",
    "error_code",
    "process_recorder",
    "record_model_call",
    "record_run",
    "record_step",
]
