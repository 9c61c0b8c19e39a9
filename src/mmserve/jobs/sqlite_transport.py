"""kombu's SQLAlchemy transport on a SQLite file, fit for the embedded job broker.

Four changes to ``kombu.transport.sqlalchemy``:

* the file is opened with a write-ahead log (``synchronous=NORMAL``: no fsync per commit, as
  the job store; measured: 26 -> 56 submits a second, ``python -m benchmarks.jobs``) and a
  busy timeout (the ingress publishes while workers poll, from other processes);
* a publish that fails raises (kombu's ``_put`` rolls back and returns, so a message could be
  lost after the job was acknowledged);
* the queue is polled every :data:`POLLING_INTERVAL_S` instead of every second (kombu passes
  every transport option of this transport to ``create_engine``, so the interval cannot be
  set as an option);
* one wait for messages lasts at most :data:`DRAIN_S` (see :meth:`Transport.drain_events`).

Registered as the transport ``mmserve-sqlite`` (:mod:`mmserve.jobs.broker`): the broker URL
is ``mmserve-sqlite+sqlite:///<path>``.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import event

#: Seconds between two polls of an idle queue.
POLLING_INTERVAL_S = 0.05
#: The longest one drain of the queue waits for a message.
DRAIN_S = 0.1


class Channel(kombu_sqla.Channel):  # type: ignore[misc]
    def _engine_from_config(self) -> Any:
        engine = super()._engine_from_config()

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA journal_mode=WAL")
            # a commit is in the log before it returns: safe when a process is killed (the
            # OS writes it out); only a crash of the machine itself may lose the last ones
            connection.execute("PRAGMA synchronous=NORMAL")

        return engine

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        obj = self._get_or_create(queue)
        message = self.message_cls(kombu_sqla.dumps(payload), obj)
        self.session.add(message)
        try:
            self.session.commit()
        except Exception:
            self.session.rollback()
            raise


class Transport(kombu_sqla.Transport):  # type: ignore[misc]
    Channel = Channel
    polling_interval = POLLING_INTERVAL_S

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        # Celery's loop for a threads pool acknowledges finished tasks (freeing their
        # prefetch slots) only between two drains, and drains with a 2 s timeout: jobs ran in
        # waves of max_concurrent_jobs every 2 s. A short drain lets it acknowledge at once.
        return super().drain_events(connection, timeout=min(timeout or DRAIN_S, DRAIN_S))


__all__ = ["POLLING_INTERVAL_S", "Channel", "Transport"]
