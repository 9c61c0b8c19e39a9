"""The job store's contract: records, their events, and the workers' heartbeats.

Two implementations: :class:`~mmserve.jobs.sqlite_store.SqliteJobStore` (one file in the jobs
folder, for one machine: the embedded default) and
:class:`~mmserve.jobs.redis_store.RedisJobStore` (a Redis server, for a cluster). Every method
is synchronous and safe to call from several threads and processes at once; callers on an
event loop use a thread (:func:`asyncio.to_thread`).

:meth:`JobStore.update` is the one way a record changes: it reads the record, hands it to
``change`` and writes what ``change`` returns, atomically (no other update in between), so the
job's state machine (:mod:`mmserve.jobs.lifecycle`) is written once, above both stores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mmserve.jobs.records import JobRecord

#: ``update``'s ``change``: the new record, or None to leave it as it is.
Change = Callable[[JobRecord], JobRecord | None]


class JobStore(Protocol):
    def create(self, record: JobRecord) -> None:
        """Store a new record (its id is new)."""
        ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def update(self, job_id: str, change: Change) -> JobRecord | None:
        """Apply ``change`` atomically; the record as stored afterwards (None: no such job)."""
        ...

    def page(
        self,
        *,
        status: str | None = None,
        target: str | None = None,
        limit: int = 50,
        after: tuple[float, str] | None = None,
    ) -> list[JobRecord]:
        """Records newest first (``created_at``, then ``id``, descending), those strictly
        older than ``after`` (a ``(created_at, id)`` of the previous page's last one)."""
        ...

    def active(self) -> list[JobRecord]:
        """Every queued or running record, oldest first."""
        ...

    def position(self, record: JobRecord) -> int:
        """How many queued records were created before ``record`` (0: it runs next)."""
        ...

    def finished_before(self, when: float, *, limit: int = 500) -> list[JobRecord]:
        """Records in a final status that finished before ``when``, oldest first."""
        ...

    def delete(self, job_id: str) -> None:
        """Remove the record and its events."""
        ...

    def add_event(self, job_id: str, event: dict[str, Any]) -> None:
        """Append one run event (a streamed run's event, as JSON data)."""
        ...

    def events(self, job_id: str, start: int = 0) -> list[dict[str, Any]]:
        """The job's events from index ``start`` on."""
        ...

    def clear_events(self, job_id: str) -> None: ...

    def beat(self, worker: str, until: float) -> None:
        """Worker ``worker`` is alive until ``until`` (a unix time)."""
        ...

    def workers(self) -> dict[str, float]:
        """Every worker that has beaten and not been forgotten -> its ``until``."""
        ...

    def forget_worker(self, worker: str) -> None: ...

    def close(self) -> None: ...


def applied(store: JobStore, job_id: str, change: Change) -> tuple[JobRecord | None, bool]:
    """``store.update(job_id, change)`` and whether ``change`` changed the record (rather
    than declined it)."""
    did: list[bool] = [False]

    def tracked(record: JobRecord) -> JobRecord | None:
        new = change(record)
        did[0] = new is not None
        return new

    record = store.update(job_id, tracked)
    return record, did[0]


__all__ = ["Change", "JobStore", "applied"]
