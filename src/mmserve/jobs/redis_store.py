"""The job store on a Redis server, for a cluster (``jobs.broker: redis://...``).

Keys, under ``prefix`` (default ``mmserve:jobs``): ``<prefix>:job:<id>`` (the record as
JSON), ``<prefix>:events:<id>`` (a list of events), ``<prefix>:by-time`` and
``<prefix>:status:<status>`` (sorted sets of ids scored by creation time: listing, positions),
``<prefix>:finished`` (ids scored by finishing time: retention) and ``<prefix>:workers``
(a hash: worker -> the time its lease ends). An update is optimistic: ``WATCH`` the record,
read it, write it and its indexes in one ``MULTI``; a concurrent write makes Redis refuse the
transaction and the update is tried again on the new record.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from mmserve.jobs.records import JobRecord
from mmserve.jobs.store import Change

DEFAULT_PREFIX = "mmserve:jobs"


class RedisJobStore:
    """:class:`~mmserve.jobs.store.JobStore` on the Redis server at ``url``."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        # Any: redis-py's sync client annotates every answer as ``Awaitable[Any] | Any``
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
        self._prefix = prefix

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _index(self, pipe: Any, old: JobRecord | None, new: JobRecord) -> None:
        if old is None:
            pipe.zadd(self._key("by-time"), {new.id: new.created_at})
        if old is None or old.status != new.status:
            if old is not None:
                pipe.zrem(self._key("status", old.status), new.id)
            pipe.zadd(self._key("status", new.status), {new.id: new.created_at})
        if new.finished_at is not None:
            pipe.zadd(self._key("finished"), {new.id: new.finished_at})

    def create(self, record: JobRecord) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._key("job", record.id), record.model_dump_json())
        self._index(pipe, None, record)
        pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._redis.get(self._key("job", job_id))
        return None if raw is None else JobRecord.model_validate_json(raw)

    def _many(self, ids: list[Any]) -> list[JobRecord]:
        if not ids:
            return []
        keys = [self._key("job", i.decode() if isinstance(i, bytes) else i) for i in ids]
        return [JobRecord.model_validate_json(raw) for raw in self._redis.mget(keys) if raw]

    def update(self, job_id: str, change: Change) -> JobRecord | None:
        key = self._key("job", job_id)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    record = JobRecord.model_validate_json(raw)
                    changed = change(record.model_copy(deep=True))
                    if changed is None:
                        pipe.unwatch()
                        return record
                    pipe.multi()
                    pipe.set(key, changed.model_dump_json())
                    self._index(pipe, record, changed)
                    pipe.execute()
                    return changed
                except redis.WatchError:
                    continue

    def page(
        self,
        *,
        status: str | None = None,
        target: str | None = None,
        limit: int = 50,
        after: tuple[float, str] | None = None,
    ) -> list[JobRecord]:
        index = self._key("status", status) if status is not None else self._key("by-time")
        top: float | str = "+inf" if after is None else after[0]
        found: list[JobRecord] = []
        offset, chunk = 0, max(limit * 2, 50)
        while len(found) < limit:
            ids = self._redis.zrevrangebyscore(index, top, "-inf", start=offset, num=chunk)
            if not ids:
                break
            offset += len(ids)
            for record in sorted(self._many(ids), key=lambda r: (r.created_at, r.id), reverse=True):
                if after is not None and (record.created_at, record.id) >= after:
                    continue
                if target is not None and record.target != target:
                    continue
                if status is not None and record.status != status:
                    continue  # changed since the index was read
                found.append(record)
        return found[:limit]

    def active(self) -> list[JobRecord]:
        records = [
            *self._many(self._redis.zrange(self._key("status", "queued"), 0, -1)),
            *self._many(self._redis.zrange(self._key("status", "running"), 0, -1)),
        ]
        return sorted(
            (r for r in records if r.status in ("queued", "running")),
            key=lambda r: (r.created_at, r.id),
        )

    def position(self, record: JobRecord) -> int:
        queued = self._key("status", "queued")
        rank = self._redis.zrank(queued, record.id)
        if rank is not None:
            return int(rank)
        # not queued (any more): the queued ones before where it would be
        before = int(self._redis.zcount(queued, "-inf", f"({record.created_at!r}"))
        ties = self._redis.zrangebyscore(queued, record.created_at, record.created_at)
        return before + sum(1 for t in ties if t.decode() < record.id)

    def finished_before(self, when: float, *, limit: int = 500) -> list[JobRecord]:
        ids = self._redis.zrangebyscore(self._key("finished"), "-inf", f"({when}", 0, limit)
        return self._many(ids)

    def delete(self, job_id: str) -> None:
        record = self.get(job_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._key("job", job_id), self._key("events", job_id))
        pipe.zrem(self._key("by-time"), job_id)
        pipe.zrem(self._key("finished"), job_id)
        if record is not None:
            pipe.zrem(self._key("status", record.status), job_id)
        pipe.execute()

    def add_event(self, job_id: str, event: dict[str, Any]) -> None:
        self._redis.rpush(self._key("events", job_id), json.dumps(event, separators=(",", ":")))

    def events(self, job_id: str, start: int = 0) -> list[dict[str, Any]]:
        return [
            json.loads(raw) for raw in self._redis.lrange(self._key("events", job_id), start, -1)
        ]

    def clear_events(self, job_id: str) -> None:
        self._redis.delete(self._key("events", job_id))

    def beat(self, worker: str, until: float) -> None:
        self._redis.hset(self._key("workers"), worker, str(until))

    def workers(self) -> dict[str, float]:
        found = self._redis.hgetall(self._key("workers"))
        return {k.decode(): float(v) for k, v in found.items()}

    def forget_worker(self, worker: str) -> None:
        self._redis.hdel(self._key("workers"), worker)

    def close(self) -> None:
        self._redis.close()


__all__ = ["DEFAULT_PREFIX", "RedisJobStore"]
