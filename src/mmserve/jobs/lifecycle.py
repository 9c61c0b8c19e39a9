"""A job's state machine: each transition is a ``change`` for
:meth:`~mmserve.jobs.store.JobStore.update` (the new record, or None when the transition does
not apply to the record as it is now), so it runs atomically on either store.

::

    queued --claim--> running --finish--> succeeded | failed | cancelled
      |                  |
      +--cancel--> cancelled   (running: cancel_requested, the worker stops it)
                         |
    worker died:  repeatable -> queued again (attempt + 1 when it runs)
                  otherwise  -> failed, code "interrupted"
    retention:    succeeded | failed | cancelled --expire--> expired (outputs removed)
"""

from __future__ import annotations

import time
from typing import Any

from mmserve.jobs.records import JobRecord, JobStatus
from mmserve.jobs.store import Change

#: The error code of a non-repeatable job whose worker died while it ran.
INTERRUPTED = "interrupted"


def hold(worker: str) -> Change:
    """The worker received the job's message (it will run it soon)."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.status != "queued" or record.held_by == worker:
            return None
        record.held_by = worker
        return record

    return change


def claim(worker: str) -> Change:
    """The worker starts the job: only a queued job can be claimed, by one worker."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.status != "queued":
            return None
        record.status = "running"
        record.worker, record.held_by = worker, None
        record.attempt += 1
        record.started_at = time.time()
        record.steps_done = 0
        return record

    return change


def _mine(record: JobRecord, worker: str, attempt: int) -> bool:
    return record.status == "running" and record.worker == worker and record.attempt == attempt


def progress(worker: str, attempt: int, steps_done: int, steps_total: int) -> Change:
    def change(record: JobRecord) -> JobRecord | None:
        if not _mine(record, worker, attempt):
            return None
        record.steps_done, record.steps_total = steps_done, steps_total
        return record

    return change


def finish(
    worker: str,
    attempt: int,
    status: JobStatus,
    *,
    error: dict[str, Any] | None = None,
    steps_done: int | None = None,
) -> Change:
    """The worker's run of ``attempt`` ended; ignored when the job is no longer its run (the
    worker was taken for dead and the job recovered meanwhile)."""

    def change(record: JobRecord) -> JobRecord | None:
        if not _mine(record, worker, attempt):
            return None
        record.status, record.error = status, error
        record.finished_at = time.time()
        if steps_done is not None:
            record.steps_done = steps_done
        return record

    return change


def cancel() -> Change:
    """A queued job is cancelled at once; a running one is asked to stop."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.status == "queued":
            record.status, record.cancel_requested = "cancelled", True
            record.finished_at = time.time()
            return record
        if record.status == "running" and not record.cancel_requested:
            record.cancel_requested = True
            return record
        return None

    return change


def recover(dead: str) -> Change:
    """The job held or run by the dead worker ``dead``: queued again (to be sent again), or,
    when it was running and repeating it is not safe, failed as interrupted."""

    def change(record: JobRecord) -> JobRecord | None:
        now = time.time()
        if record.status == "queued" and record.held_by == dead:
            record.held_by, record.rung_at = None, now
            return record
        if record.status != "running" or record.worker != dead:
            return None
        if record.cancel_requested:
            record.status, record.finished_at = "cancelled", now
        elif record.repeatable:
            record.status, record.worker, record.held_by = "queued", None, None
            record.steps_done, record.rung_at = 0, now
        else:
            record.status, record.finished_at = "failed", now
            steps = ", ".join(record.side_effects)
            record.error = {
                "code": INTERRUPTED,
                "message": f"the job was running (attempt {record.attempt}) when its worker "
                "stopped; it is not run again because its workflow has steps with side "
                f"effects ({steps}), which may have run",
                "status": 500,
                "side_effects": list(record.side_effects),
            }
        return record

    return change


def rung() -> Change:
    """Its message was sent again."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.status != "queued":
            return None
        record.rung_at = time.time()
        return record

    return change


def expire() -> Change:
    """Its retention has passed: its outputs are removed, the record says ``expired``."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.status not in ("succeeded", "failed", "cancelled"):
            return None
        record.status = "expired"
        record.finished_at = time.time()  # the tombstone is kept for another retention
        return record

    return change


__all__ = [
    "INTERRUPTED",
    "cancel",
    "claim",
    "expire",
    "finish",
    "hold",
    "progress",
    "recover",
    "rung",
]
