"""The job worker deployment: replicas that run the queued jobs (:mod:`mmserve.jobs.worker`).

Each replica builds the same engine as an ingress replica
(:func:`~mmserve.serve.ingress.replica_engine`: model calls over the same deployment handles,
so a job's model calls ride in the same batches as synchronous runs) and starts a Celery
worker thread on the job queue, running at most ``jobs.max_concurrent_jobs`` jobs at once on
the replica's event loop. Scale it with ``jobs.replicas`` or ``jobs.autoscaling``.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import Any

from ray.serve.handle import DeploymentHandle

from mmserve.config import AppConfig
from mmserve.http.limits import check_inputs
from mmserve.jobs.worker import JobTargets, JobWorker
from mmserve.registry import registry
from mmserve.serve.ingress import replica_engine
from mmserve.serve.metrics import JobMetrics, RayRecorder
from mmserve.serve.status import JobQueueView
from mmserve.tracing import configure as configure_tracing
from mmserve.workflow import Workflow, load_workflows


def queue_view(worker: JobWorker) -> dict[str, Any]:
    """Blocking: the job queue's counts from ``worker``'s store."""
    now = time.time()
    view = JobQueueView(workers=sum(1 for until in worker.store.workers().values() if until >= now))
    for record in worker.store.active():
        counts = view.by_workflow.setdefault(record.target, {"queued": 0, "running": 0})
        counts[record.status] += 1
        if record.status == "queued":
            view.queued += 1
        else:
            view.running += 1
    return view.model_dump()


class JobWorkerServer:
    """A job worker replica (a Serve deployment class; see the module docstring)."""

    def __init__(
        self,
        config_data: dict[str, Any],
        base_dir: str,
        models: dict[str, DeploymentHandle[Any]],
        deployments: dict[str, list[str]],
        store: DeploymentHandle[Any] | None = None,
        store_readers: DeploymentHandle[Any] | None = None,
    ) -> None:
        configure_tracing()
        config = AppConfig.from_dict(config_data, base_dir=Path(base_dir))
        registry.ensure_loaded()
        workflows = load_workflows([p for p in config.workflow_paths() if p.exists()])
        engine, _ = replica_engine(config, models, deployments, store, store_readers)

        async def checked(workflow: Workflow, raw: dict[str, Any]) -> dict[str, Any]:
            return await check_inputs(workflow, raw, config.server.limits)

        # Serve runs __init__ on the replica's event loop: the jobs run there too
        loop = asyncio.get_running_loop()
        self._worker = JobWorker(
            config,
            JobTargets(engine, workflows, checked),
            loop,
            observer=JobMetrics(RayRecorder()),
        )
        self._worker.start()
        self._stop = partial(self._worker.stop)

    async def queue(self) -> dict[str, Any]:
        """The queue as the job store has it (a :class:`~mmserve.serve.status.JobQueueView`'s
        fields): jobs queued and running, by workflow, and the live workers."""
        return await asyncio.to_thread(queue_view, self._worker)

    async def check_health(self) -> None:
        """Unhealthy once the Celery worker thread has stopped (Serve restarts the replica)."""
        self._worker.check_alive()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop()


__all__ = ["JobWorkerServer", "queue_view"]
