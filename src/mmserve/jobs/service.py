"""The job API's side of the queue (an ingress replica): submit, look up, list, cancel.

:meth:`JobService.submit` writes the inputs file and the record, then sends the message; the
job is acknowledged (``202``) only once all three are done, so an acknowledged job is on disk
(or in Redis) and on the queue. If sending fails the record is marked failed and the caller
gets a 503. If the process dies between the record and the message, the job was never
acknowledged, and a worker's sweep sends its message anyway (:mod:`mmserve.jobs.worker`).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from pathlib import Path
from typing import Any

from mmserve.config import AppConfig
from mmserve.errors import (
    JobFinishedError,
    JobNotFoundError,
    RequestError,
    ServiceUnavailableError,
)
from mmserve.jobs import lifecycle
from mmserve.jobs.broker import Doorbell, celery_app
from mmserve.jobs.files import JobFiles
from mmserve.jobs.records import STATUSES, JobRecord
from mmserve.jobs.redis_store import RedisJobStore
from mmserve.jobs.sqlite_store import SqliteJobStore
from mmserve.jobs.store import Change, JobStore, applied

#: Largest page of ``GET /v1/jobs``.
MAX_PAGE = 500


def open_store(config: AppConfig) -> JobStore:
    """The job store the config names: SQLite in the jobs folder, or Redis."""
    if config.jobs.broker == "sqlite":
        return SqliteJobStore(config.jobs_location() / "jobs.sqlite")
    return RedisJobStore(config.jobs.broker, prefix=config.jobs.queue)


def encode_cursor(record: JobRecord) -> str:
    raw = json.dumps([record.created_at, record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        return float(created), str(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise RequestError(
            f"cursor {cursor[:40]!r} is not one this server gave",
            hint="pass the next_cursor of the previous page as it came",
        ) from exc


def _refused(reason: str) -> Change:
    """The queue did not take the job: it fails (it was never acknowledged)."""

    def change(record: JobRecord) -> JobRecord:
        record.status, record.finished_at = "failed", time.time()
        record.error = {
            "code": "unavailable",
            "message": f"the job queue did not take the job ({reason})",
            "status": 503,
        }
        return record

    return change


def full_view(store: JobStore, files: JobFiles, record: JobRecord) -> dict[str, Any]:
    """The record's API view with the outputs and trace of a job that succeeded and the
    position of a queued one."""
    position = store.position(record) if record.status == "queued" else None
    view = record.view(position=position)
    if record.status == "succeeded":
        result = files.result(record.id) or {}
        view["outputs"], view["trace"] = result.get("outputs"), result.get("trace")
    return view


class JobService:
    """Jobs as the API sees them (sync methods: call them in a thread from a loop)."""

    def __init__(
        self, config: AppConfig, *, store: JobStore, files: JobFiles, doorbell: Doorbell
    ) -> None:
        self.config = config
        self.store, self.files, self.doorbell = store, files, doorbell

    @classmethod
    def from_config(cls, config: AppConfig) -> JobService:
        folder: Path = config.jobs_location()
        return cls(
            config,
            store=open_store(config),
            files=JobFiles(folder),
            doorbell=Doorbell(celery_app(config.jobs, folder), config.jobs.queue),
        )

    def submit(self, record: JobRecord, inputs: dict[str, Any]) -> JobRecord:
        """Keep ``record`` and its ``inputs`` and queue the job (see the module docstring)."""
        self.files.save_inputs(record.id, inputs)
        self.store.create(record)
        try:
            self.doorbell.ring(record.id)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.store.update(record.id, _refused(reason))
            raise ServiceUnavailableError(
                f"the job queue is unavailable ({reason})",
                hint="check jobs.broker (a Redis server that is down?) and retry",
            ) from exc
        return record

    def record(self, job_id: str) -> JobRecord:
        found = self.store.get(job_id)
        if found is None:
            raise JobNotFoundError(job_id)
        return found

    def view(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/jobs/{id}``: the record's view, with the outputs and trace of a job that
        succeeded and the position of a queued one."""
        record = self.record(job_id)
        return self.view_of(record)

    def view_of(self, record: JobRecord) -> dict[str, Any]:
        return full_view(self.store, self.files, record)

    def page(
        self,
        *,
        status: str | None = None,
        target: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise RequestError(
                f"status {status[:40]!r} is not a job status; use one of {', '.join(STATUSES)}"
            )
        if not 1 <= limit <= MAX_PAGE:
            raise RequestError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        after = None if cursor is None else decode_cursor(cursor)
        records = self.store.page(status=status, target=target, limit=limit + 1, after=after)
        more = len(records) > limit
        records = records[:limit]
        return {
            "jobs": [r.view(position=None) for r in records],
            "next_cursor": encode_cursor(records[-1]) if more and records else None,
        }

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job (it never runs) or ask a running one to stop."""
        record, _ = self.cancel_record(job_id)
        return self.view_of(record)

    def cancel_record(self, job_id: str) -> tuple[JobRecord, bool]:
        """:meth:`cancel`'s record afterwards, and whether this cancel ended the job (a queued
        job: its webhook is then the caller's to call, no worker will)."""
        record = self.record(job_id)
        if record.finished:
            raise JobFinishedError(
                f"job {job_id} has already finished ({record.status})",
                hint="only a queued or running job can be cancelled",
            )
        found, changed = applied(self.store, job_id, lifecycle.cancel())
        after = found or record
        if after.finished and after.status != "cancelled":
            raise JobFinishedError(f"job {job_id} has already finished ({after.status})")
        return after, changed and after.finished

    def events(self, job_id: str, start: int = 0) -> list[dict[str, Any]]:
        return self.store.events(job_id, start)

    def close(self) -> None:
        self.doorbell.close()
        self.store.close()


__all__ = [
    "MAX_PAGE",
    "JobService",
    "decode_cursor",
    "encode_cursor",
    "full_view",
    "open_store",
]
