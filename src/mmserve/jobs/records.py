"""A job's record: what the job store keeps of one asynchronous run, and its public view.

The record is the authority on a job's state (the broker message only says "run job X"):
``queued`` (with the worker that has received its message, if any: ``held_by``), ``running``
(on ``worker``, attempt ``attempt``), then one of the final statuses. Every change is one
atomic update of the store (:meth:`mmserve.jobs.store.JobStore.update`), so two workers that
receive the same job (a message sent twice on recovery) never both run it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
#: Every status, in the order a job passes through them.
STATUSES: tuple[JobStatus, ...] = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
)
#: Statuses a job never leaves (but for ``expired``, once its retention has passed).
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "expired"})
#: Statuses of a job still to run or running.
ACTIVE: frozenset[str] = frozenset({"queued", "running"})
JobKind = Literal["workflow", "agent"]


def new_job_id() -> str:
    """A job id: 32 hex characters, unguessable."""
    return uuid.uuid4().hex


class JobRecord(BaseModel):
    """One job as the store keeps it."""

    id: str = Field(default_factory=new_job_id)
    kind: JobKind = "workflow"
    #: The workflow's (or agent's) name.
    target: str
    status: JobStatus = "queued"
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    caller: str | None = None
    request_id: str | None = None
    #: How many times a worker has started it (1 once it runs; 2 after a recovered crash).
    attempt: int = 0
    #: The worker running it (``running``), or the last that did.
    worker: str | None = None
    #: The worker holding its message (received, not started yet): recovered if it dies.
    held_by: str | None = None
    #: When its last broker message was sent (a lost message is sent again after a while).
    rung_at: float = Field(default_factory=time.time)
    cancel_requested: bool = False
    steps_done: int = 0
    steps_total: int = 0
    #: Whether running it again after a crash is safe (no step with side effects).
    repeatable: bool = True
    side_effects: list[str] = Field(default_factory=list)
    timeout_s: float = 3600.0
    use_cache: bool = True
    webhook: str | None = None
    #: The failure: ``{"code", "message", "status", ...}`` (the HTTP error answer's fields).
    error: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def view(self, *, position: int | None = None) -> dict[str, Any]:
        """The API's view (``GET /v1/jobs/{id}`` without outputs and trace)."""
        return {
            "id": self.id,
            "status": self.status,
            "kind": self.kind,
            self.kind: self.target,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "caller": self.caller,
            "attempts": self.attempt,
            "position": position if self.status == "queued" else None,
            "steps_done": self.steps_done,
            "steps_total": self.steps_total,
            "cancel_requested": self.cancel_requested,
            "webhook": self.webhook,
            "error": self.error,
            "outputs": None,
            "trace": None,
            "url": job_url(self.id),
        }


def job_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


__all__ = [
    "ACTIVE",
    "FINISHED",
    "STATUSES",
    "JobKind",
    "JobRecord",
    "JobStatus",
    "job_url",
    "new_job_id",
]
