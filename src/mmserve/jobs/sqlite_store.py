"""The embedded job store: one SQLite file (write-ahead log), shared by the processes of one
machine (the ingress and job worker replicas). Each update runs in a ``BEGIN IMMEDIATE``
transaction, so it is atomic across processes; a SIGKILLed process leaves nothing half
written (SQLite's journal)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from mmserve.jobs.records import JobRecord
from mmserve.jobs.store import Change

#: How long a writer waits for another process's transaction before failing, in ms.
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    target TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at, id);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS job_workers (
    worker TEXT PRIMARY KEY,
    until REAL NOT NULL
);
"""


class SqliteJobStore:
    """:class:`~mmserve.jobs.store.JobStore` on the SQLite file ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,
        )
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._db.executescript(_SCHEMA)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, params)

    @staticmethod
    def _record(row: tuple[Any, ...]) -> JobRecord:
        return JobRecord.model_validate_json(row[0])

    def create(self, record: JobRecord) -> None:
        self._write(
            "INSERT INTO jobs (id, status, target, created_at, finished_at, record) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.status,
                record.target,
                record.created_at,
                record.finished_at,
                record.model_dump_json(),
            ),
        )

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._rows("SELECT record FROM jobs WHERE id = ?", (job_id,))
        return self._record(rows[0]) if rows else None

    def update(self, job_id: str, change: Change) -> JobRecord | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,))
                row = rows.fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                record = self._record(row)
                changed = change(record.model_copy(deep=True))
                if changed is not None:
                    self._db.execute(
                        "UPDATE jobs SET status = ?, finished_at = ?, record = ? WHERE id = ?",
                        (changed.status, changed.finished_at, changed.model_dump_json(), job_id),
                    )
                    record = changed
                self._db.execute("COMMIT")
                return record
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def page(
        self,
        *,
        status: str | None = None,
        target: str | None = None,
        limit: int = 50,
        after: tuple[float, str] | None = None,
    ) -> list[JobRecord]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if target is not None:
            where.append("target = ?")
            params.append(target)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([after[0], after[0], after[1]])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT record FROM jobs {clause} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [self._record(row) for row in rows]

    def active(self) -> list[JobRecord]:
        rows = self._rows(
            "SELECT record FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id"
        )
        return [self._record(row) for row in rows]

    def position(self, record: JobRecord) -> int:
        rows = self._rows(
            "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND "
            "(created_at < ? OR (created_at = ? AND id < ?))",
            (record.created_at, record.created_at, record.id),
        )
        return int(rows[0][0])

    def finished_before(self, when: float, *, limit: int = 500) -> list[JobRecord]:
        rows = self._rows(
            "SELECT record FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? "
            "ORDER BY finished_at LIMIT ?",
            (when, limit),
        )
        return [self._record(row) for row in rows]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            self._db.execute("DELETE FROM job_events WHERE job_id = ?", (job_id,))
            self._db.execute("COMMIT")

    def add_event(self, job_id: str, event: dict[str, Any]) -> None:
        self._write(
            "INSERT INTO job_events (job_id, seq, event) VALUES (?, "
            "(SELECT COALESCE(MAX(seq) + 1, 0) FROM job_events WHERE job_id = ?), ?)",
            (job_id, job_id, json.dumps(event, separators=(",", ":"))),
        )

    def events(self, job_id: str, start: int = 0) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT event FROM job_events WHERE job_id = ? AND seq >= ? ORDER BY seq",
            (job_id, start),
        )
        return [json.loads(row[0]) for row in rows]

    def clear_events(self, job_id: str) -> None:
        self._write("DELETE FROM job_events WHERE job_id = ?", (job_id,))

    def beat(self, worker: str, until: float) -> None:
        self._write(
            "INSERT INTO job_workers (worker, until) VALUES (?, ?) "
            "ON CONFLICT (worker) DO UPDATE SET until = excluded.until",
            (worker, until),
        )

    def workers(self) -> dict[str, float]:
        return {str(w): float(u) for w, u in self._rows("SELECT worker, until FROM job_workers")}

    def forget_worker(self, worker: str) -> None:
        self._write("DELETE FROM job_workers WHERE worker = ?", (worker,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


__all__ = ["BUSY_TIMEOUT_MS", "SqliteJobStore"]
