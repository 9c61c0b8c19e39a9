"""A job worker: a Celery worker (a thread pool) that runs jobs on a workflow engine, and the
housekeeping that makes the queue durable.

Each message names a job. The worker *claims* the job in the store (only a queued job can be
claimed, so a message sent twice runs the job once), runs the workflow on the event loop it
was given (the Serve replica's, in :mod:`mmserve.serve.jobs_worker`), writes each run event and
the steps done to the store, and finishes the job: ``succeeded`` with a result file,
``failed`` with the error, or ``cancelled``; then calls its webhook, if it named one.

A broker's redelivery alone does not make jobs durable (kombu's SQLite transport marks a
message consumed when a worker receives it, so a SIGKILLed worker's jobs would be lost), so
the store says which worker holds or runs which job, and every worker:

* beats: renews its lease (``jobs.lease_s``) every :data:`BEAT_S`; and stops the asyncio task
  of a job of its own whose cancel was asked;
* sweeps, every half lease: a worker whose lease ran out is dead, and its jobs are recovered
  (:func:`mmserve.jobs.lifecycle.recover`: queued again and sent again, or, running and not
  repeatable, failed as ``interrupted``), and so are the jobs the store says run here that
  this worker is not running (their end could not be written); queued jobs that no worker
  holds, when the queue holds fewer messages than there are such jobs, are sent again (a
  message lost between the record and the broker); finished jobs past ``jobs.retention_s``
  expire (their files go), and expired records are removed after another retention.

Every recovery is an atomic update of the store, so several workers sweeping at once agree;
a message sent twice is harmless (the second finds the job claimed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from celery.signals import task_received, worker_ready

from mmserve.config import AppConfig
from mmserve.jobs import lifecycle
from mmserve.jobs.broker import TASK, Doorbell, celery_app, job_of
from mmserve.jobs.files import JobFiles
from mmserve.jobs.records import JobRecord
from mmserve.jobs.service import full_view, open_store
from mmserve.jobs.store import Change, applied
from mmserve.jobs.webhooks import deliver
from mmserve.workflow import Engine, RunResult, Workflow
from mmserve.workflow.run.events import ItemProgress, StepFinished, StepStarted
from mmserve.workflow.run.result import failure_of

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats (and two looks at the cancels of the worker's jobs).
BEAT_S = 0.25
#: A queued job's message is sent again only after it has waited this long unheld.
RING_GRACE_S = 5.0
#: Seconds between two wake-ups of Celery's loop (see JobWorker._ready).
WAKE_S = 0.05
#: Seconds between two retention passes.
RETENTION_EVERY_S = 60.0
#: How long stopping waits for each of the worker's threads to end.
STOP_WAIT_S = 10.0


@dataclass
class _Running:
    task: asyncio.Task[Any]
    attempt: int
    cancelled: bool = False


@dataclass
class JobTargets:
    """What jobs run on: the engine and the workflows by name."""

    engine: Engine
    workflows: Mapping[str, Workflow]
    #: Checks and decodes a job's stored inputs for its workflow (the door's checks).
    check_inputs: Callable[[Workflow, dict[str, Any]], Awaitable[dict[str, Any]]]


class JobObserver(Protocol):
    """What a worker reports for metrics (:class:`mmserve.serve.metrics.JobMetrics`)."""

    def started(self, record: JobRecord) -> None: ...

    def finished(self, record: JobRecord) -> None: ...

    def queue(self, queued: Mapping[str, int]) -> None:
        """The queued jobs by workflow, at each sweep."""
        ...


def _wake() -> None:
    """Nothing: a timer entry that wakes Celery's loop."""


#: The worker that received each message not yet run (task id -> worker), for
#: :func:`_run_job`.
_RECEIVED: dict[str, JobWorker] = {}
_RECEIVED_LOCK = threading.Lock()


def _run_job(task: Any, job_id: str) -> None:
    """The Celery task (a pool thread): the worker that received the message runs the job.

    Celery runs a task through state it keeps once per process (the task registry and app of
    the worker started last: ``celery.app.trace.setup_worker_optimizations``), so with several
    workers in one process (tests, a worker restarted in place) a worker's own method as the
    task would run on whichever worker started last. The worker that received the message
    is known exactly (:meth:`JobWorker._received` runs in its consumer before the task)."""
    with _RECEIVED_LOCK:
        worker = _RECEIVED.pop(task.request.id, None)
    if worker is None:
        raise RuntimeError(f"no job worker received the message {task.request.id}")
    worker._handle(job_id)


class JobWorker:
    """Runs the jobs of the queue on ``targets``'s engine, on ``loop`` (see the module
    docstring). :meth:`start` starts the Celery worker thread and the housekeeping thread."""

    def __init__(
        self,
        config: AppConfig,
        targets: JobTargets,
        loop: asyncio.AbstractEventLoop,
        *,
        name: str | None = None,
        observer: JobObserver | None = None,
    ) -> None:
        self.config = config
        self.observer = observer
        self.targets = targets
        self.loop = loop
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        folder = config.jobs_location()
        self.store = open_store(config)
        self.files = JobFiles(folder)
        self.app = celery_app(config.jobs, folder)
        self.doorbell = Doorbell(self.app, config.jobs.queue)
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._celery: Any = None
        self._last_retention = 0.0
        self._deliveries: set[Future[bool]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.store.beat(self.name, time.time() + self.config.jobs.lease_s)
        # shared=False: Celery's default registers a task with every app created later in
        # the process (see _run_job for why the task is not this worker's method)
        self.app.task(name=TASK, bind=True, acks_late=True, ignore_result=True, shared=False)(
            _run_job
        )
        # a uid of this worker's own: Celery identifies a bound method by its function, so a
        # second worker's handlers would otherwise be taken for the first's and dropped
        task_received.connect(self._received, weak=False, dispatch_uid=self._uid("received"))
        worker_ready.connect(self._ready, weak=False, dispatch_uid=self._uid("ready"))
        self._celery = self.app.Worker(
            hostname=f"{self.name}@{socket.gethostname()}",
            queues=[self.config.jobs.queue],
            pool="threads",
            concurrency=self.config.jobs.max_concurrent_jobs,
            loglevel=os.environ.get("MMSERVE_JOBS_LOGLEVEL", "WARNING"),
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            quiet=True,
        )
        for target, what in ((self._celery.start, "celery"), (self._housekeeping, "beat")):
            thread = threading.Thread(target=target, name=f"mmserve-jobs-{what}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop taking jobs; Celery's warm shutdown lets the jobs running here end. Then the
        worker is forgotten, unless a job is still held or running in its name: that one is
        left to the recovery of a worker that lives, once this one's lease has run out (a
        forgotten worker's jobs would never be recovered)."""
        self._quit()
        if not any(self.name in (r.worker, r.held_by) for r in self.store.active()):
            self.store.forget_worker(self.name)

    def halt(self) -> None:
        """Stop dead, as a SIGKILL would: for tests and shutdown. The heartbeats stop, the jobs
        running here are cancelled and Celery stops taking messages, but nothing is written:
        the worker is not forgotten and its jobs stay held or running in its name, for a
        live worker to recover once the lease has run out."""
        self._stop.set()
        with self._lock:
            running = [r.task for r in self._running.values()]
        for task in running:  # not marked cancelled: the run ends without a word to the store
            self.loop.call_soon_threadsafe(task.cancel)
        self._quit()

    def _quit(self) -> None:
        self._stop.set()
        task_received.disconnect(self._received, dispatch_uid=self._uid("received"))
        worker_ready.disconnect(self._ready, dispatch_uid=self._uid("ready"))
        if self._celery is not None:
            try:
                self._celery.stop(in_sighandler=False, exitcode=0)
            except Exception:  # shutting down anyway
                logger.debug("celery worker stop failed", exc_info=True)
        for thread in self._threads:  # the housekeeping writes nothing once this returns
            if thread is not threading.current_thread():
                thread.join(timeout=STOP_WAIT_S)
        with _RECEIVED_LOCK:  # messages received but never run (their jobs are recovered)
            for task_id in [t for t, worker in _RECEIVED.items() if worker is self]:
                del _RECEIVED[task_id]

    def _uid(self, signal: str) -> str:
        return f"mmserve-jobs-{signal}-{self.name}"

    def check_alive(self) -> None:
        """Raises when the Celery worker or the housekeeping thread has stopped."""
        stopped = [t.name for t in self._threads if not t.is_alive()]
        if stopped and not self._stop.is_set():
            raise RuntimeError(f"job worker threads stopped: {', '.join(stopped)}")

    def _ready(self, sender: Any = None, **_: Any) -> None:
        """Celery's blocking loop (the threads pool's) sends the acknowledgement of a finished
        task, and so frees its prefetch slot, only when it next wakes up: on a network event,
        or after seconds (measured here: 10 s between jobs on Redis). A no-op timer every
        :data:`WAKE_S` wakes it (celery/celery#6941)."""
        if sender is not None and getattr(sender, "hostname", None) == self._celery.hostname:
            sender.timer.call_repeatedly(WAKE_S, _wake)

    def _received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        """Celery received a message (before a pool thread runs it): hold its job."""
        if request is None or getattr(request, "hostname", None) != self._celery.hostname:
            return
        with _RECEIVED_LOCK:
            _RECEIVED[request.id] = self
        try:
            self.store.update(job_of(request.id), lifecycle.hold(self.name))
        except Exception:  # the claim decides; a missed hold only delays a recovery
            logger.warning("could not record job %s as held", request.id, exc_info=True)

    # -- running one job ------------------------------------------------------------------

    def _handle(self, job_id: str) -> None:
        """The Celery task (a pool thread): run the job on the loop, wait for it."""
        future: Future[None] = asyncio.run_coroutine_threadsafe(self.run(job_id), self.loop)
        future.result()

    async def _store(self, job_id: str, change: Change) -> JobRecord | None:
        return await asyncio.to_thread(self.store.update, job_id, change)

    async def run(self, job_id: str) -> None:
        """Claim and run one job (nothing when another worker has it or it is finished)."""
        record = await self._store(job_id, lifecycle.claim(self.name))
        if record is None or record.status != "running" or record.worker != self.name:
            return
        attempt = record.attempt
        self._observe("started", record)
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._running[job_id] = _Running(task, attempt)
        try:
            await self._run_claimed(record)
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    async def _run_claimed(self, record: JobRecord) -> None:
        job_id, attempt = record.id, record.attempt
        if attempt > 1:
            await asyncio.to_thread(self.store.clear_events, job_id)
        steps_done = 0

        async def finish(status: Any, error: dict[str, Any] | None = None) -> None:
            change = lifecycle.finish(
                self.name, attempt, status, error=error, steps_done=steps_done
            )
            ended, changed = await asyncio.to_thread(applied, self.store, job_id, change)
            if changed and ended is not None:
                self._observe("finished", ended)
                await asyncio.to_thread(self._notify, ended)

        workflow = self.targets.workflows.get(record.target)
        if workflow is None:
            await finish(
                "failed",
                {
                    "code": "workflow_not_found",
                    "message": f"the workflow {record.target!r} is not loaded on this server "
                    "any more",
                    "status": 404,
                },
            )
            return
        total = len(workflow.spec.steps)

        async def on_event(event: StepStarted | StepFinished | ItemProgress) -> None:
            nonlocal steps_done
            await asyncio.to_thread(self.store.add_event, job_id, event.model_dump(mode="json"))
            if isinstance(event, StepFinished):
                steps_done += 1
                await self._store(job_id, lifecycle.progress(self.name, attempt, steps_done, total))

        await self._store(job_id, lifecycle.progress(self.name, attempt, 0, total))
        try:
            raw = await asyncio.to_thread(self.files.inputs, job_id)
            inputs = await self.targets.check_inputs(workflow, raw or {})
            result: RunResult = await self.targets.engine.run(
                workflow,
                inputs,
                timeout_s=record.timeout_s,
                use_cache=record.use_cache,
                on_event=on_event,
            )
            # in the try: a result that cannot be kept fails the job (else it stays running)
            await asyncio.to_thread(self.files.save_result, job_id, result.model_dump(mode="json"))
        except asyncio.CancelledError:
            if self._cancel_asked(job_id):
                await finish("cancelled")
                return
            raise  # the worker is stopping: the job is recovered by a live worker
        except Exception as exc:
            await finish("failed", failure_of(exc))
            return
        await finish("succeeded")

    def _observe(self, what: str, record: JobRecord) -> None:
        if self.observer is None:
            return
        try:
            getattr(self.observer, what)(record)
        except Exception:  # metrics never fail a job
            logger.warning("job metrics (%s) failed", what, exc_info=True)

    def _notify(self, record: JobRecord) -> None:
        """Call the finished job's webhook, if it named one (on the loop, in the background)."""
        if record.webhook is None:
            return
        view = full_view(self.store, self.files, record)
        coroutine = deliver(record.webhook, view, self.config.jobs)
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        self._deliveries.add(future)
        future.add_done_callback(self._deliveries.discard)

    def _cancel_asked(self, job_id: str) -> bool:
        with self._lock:
            running = self._running.get(job_id)
            return running is not None and running.cancelled

    # -- housekeeping ---------------------------------------------------------------------

    def _housekeeping(self) -> None:
        lease = self.config.jobs.lease_s
        next_sweep = time.monotonic() + random.uniform(0, lease / 2)
        while not self._stop.wait(BEAT_S):
            try:
                self.store.beat(self.name, time.time() + lease)
                self._stop_cancelled()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + lease / 2 * random.uniform(0.8, 1.2)
                    self.sweep()
            except Exception:  # a store that is briefly away: try again next beat
                logger.warning("job housekeeping failed", exc_info=True)

    def _stop_cancelled(self) -> None:
        with self._lock:
            mine = dict(self._running)
        for job_id, running in mine.items():
            if running.cancelled:
                continue
            record = self.store.get(job_id)
            if record is not None and record.cancel_requested:
                running.cancelled = True
                self.loop.call_soon_threadsafe(running.task.cancel)

    def sweep(self) -> None:
        """Recover the jobs of dead workers, send lost messages again, expire old jobs."""
        now = time.time()
        dead = [w for w, until in self.store.workers().items() if until < now and w != self.name]
        active = self.store.active()
        for worker in dead:
            for record in active:
                if worker in (record.held_by, record.worker):
                    self._recover(record.id, worker, "died")
            self.store.forget_worker(worker)
        with self._lock:
            mine = set(self._running)
        for record in active:
            # running here by the store, not by this worker: its end could not be written
            # (the store was away); recovered as a dead worker's job (after a grace: a job
            # just claimed is not registered as running yet)
            if (
                record.status == "running"
                and record.worker == self.name
                and record.id not in mine
                and (record.started_at or 0.0) < now - self.config.jobs.lease_s
            ):
                self._recover(record.id, self.name, "lost track of it")
        current = self.store.active()
        self._count_queue(current)
        unheld = [
            r
            for r in current
            if r.status == "queued" and r.held_by is None and not r.cancel_requested
        ]
        stale = [r for r in unheld if now - r.rung_at > RING_GRACE_S]
        if stale and len(unheld) > self.doorbell.waiting():
            for record in stale:
                _, changed = applied(self.store, record.id, lifecycle.rung())
                if changed:
                    self.doorbell.ring(record.id)
        if now - self._last_retention > RETENTION_EVERY_S:
            self._last_retention = now
            self.expire(now)

    def _recover(self, job_id: str, worker: str, why: str) -> None:
        new, changed = applied(self.store, job_id, lifecycle.recover(worker))
        if changed and new is not None and new.status == "queued":
            self.doorbell.ring(job_id)
            logger.warning("job %s: worker %s %s; queued again", job_id, worker, why)
        elif changed and new is not None and new.finished:
            self._observe("finished", new)
            self._notify(new)

    def _count_queue(self, active: list[JobRecord]) -> None:
        """Report the queued jobs by workflow (metrics)."""
        if self.observer is None:
            return
        queued: dict[str, int] = {}
        for record in active:
            if record.status == "queued":
                queued[record.target] = queued.get(record.target, 0) + 1
        self.observer.queue(queued)

    def expire(self, now: float) -> None:
        """Finished jobs past their retention expire; expired records go after another."""
        for record in self.store.finished_before(now - self.config.jobs.retention_s):
            if record.status == "expired":
                self.store.delete(record.id)
                continue
            _, changed = applied(self.store, record.id, lifecycle.expire())
            if changed:
                self.files.remove(record.id)


__all__ = ["BEAT_S", "JobTargets", "JobWorker", "applied"]
