"""The job store contract (:class:`mmserve.jobs.store.JobStore`), one set of tests run on both
stores: :class:`~mmserve.jobs.sqlite_store.SqliteJobStore` on a temporary file and
:class:`~mmserve.jobs.redis_store.RedisJobStore` on a real Redis (keys under a prefix of
their own). (Named apart from tests/unit/stores/test_store_contract.py, the vector stores'.)"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmserve.jobs.records import JobRecord, JobStatus
from mmserve.jobs.redis_store import RedisJobStore
from mmserve.jobs.sqlite_store import SqliteJobStore
from mmserve.jobs.store import JobStore

pytestmark = pytest.mark.unit

#: Opens another store object on the same data (another connection, as another process has).
Opener = Callable[[], JobStore]


@pytest.fixture(params=["sqlite", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[JobStore] = []
    if request.param == "sqlite":
        path = tmp_path / "jobs.sqlite"

        def open_one() -> JobStore:
            opened.append(SqliteJobStore(path))
            return opened[-1]
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix = f"test-store-{uuid.uuid4().hex[:10]}"

        def open_one() -> JobStore:
            opened.append(RedisJobStore(url, prefix=prefix))
            return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> JobStore:
    return opener()


def job(
    target: str = "caption",
    *,
    created_at: float = 1000.0,
    status: JobStatus = "queued",
    job_id: str | None = None,
    finished_at: float | None = None,
) -> JobRecord:
    record = JobRecord(target=target, created_at=created_at, status=status)
    if job_id is not None:
        record.id = job_id
    record.finished_at = finished_at
    return record


def ids(records: list[JobRecord]) -> list[str]:
    return [r.id for r in records]


def test_a_created_record_is_read_back_whole(store: JobStore) -> None:
    record = job()
    record.side_effects, record.webhook = ["tell"], "http://hooks.example/x"
    record.error = {"code": "x", "message": "y", "status": 500, "nested": {"a": [1, 2]}}
    store.create(record)
    assert store.get(record.id) == record
    assert store.get("0" * 32) is None


def test_an_update_writes_what_the_change_returns(store: JobStore) -> None:
    record = job()
    store.create(record)

    def start(found: JobRecord) -> JobRecord:
        found.status, found.worker, found.attempt = "running", "w1", 1
        return found

    updated = store.update(record.id, start)
    assert updated is not None and updated.status == "running"
    assert store.get(record.id) == updated
    assert updated.model_copy(update={"status": "queued", "worker": None, "attempt": 0}) == record


def test_a_change_returning_none_leaves_the_record_and_returns_it_as_stored(
    store: JobStore,
) -> None:
    record = job()
    store.create(record)

    def meddle(found: JobRecord) -> None:
        found.status = "failed"  # changes its copy, then declines
        return None

    assert store.update(record.id, meddle) == record
    assert store.get(record.id) == record


def test_a_change_that_raises_leaves_the_record_and_the_store_usable(store: JobStore) -> None:
    record = job()
    store.create(record)

    def broken(found: JobRecord) -> JobRecord:
        found.status = "failed"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.update(record.id, broken)
    assert store.get(record.id) == record
    store.update(record.id, lambda r: r.model_copy(update={"steps_done": 1}))
    found = store.get(record.id)
    assert found is not None and found.steps_done == 1


def test_an_update_of_an_unknown_job_is_none_and_calls_nothing(store: JobStore) -> None:
    calls: list[JobRecord] = []

    def change(found: JobRecord) -> JobRecord:
        calls.append(found)
        return found

    assert store.update("f" * 32, change) is None
    assert calls == []


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "a-store-each"])
def test_concurrent_updates_lose_nothing(opener: Opener, shared: bool) -> None:
    threads_n, each = 8, 25
    first = opener()
    record = job()
    first.create(record)
    stores = [first if shared else opener() for _ in range(threads_n)]
    start = threading.Barrier(threads_n)
    failures: list[BaseException] = []

    def bump(found: JobRecord) -> JobRecord:
        found.steps_done += 1
        return found

    def work(store: JobStore) -> None:
        try:
            start.wait()
            for _ in range(each):
                store.update(record.id, bump)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    found = first.get(record.id)
    assert found is not None and found.steps_done == threads_n * each


def test_a_page_is_newest_first_and_the_cursor_pages_on_with_ties(store: JobStore) -> None:
    # three records share a creation time: ties are ordered by id, descending
    records = [
        job(created_at=1000.0, job_id="a" * 32),
        job(created_at=1001.5, job_id="b" * 32),
        job(created_at=1001.5, job_id="d" * 32),
        job(created_at=1001.5, job_id="c" * 32),
        job(created_at=1002.25, job_id="0" * 32),
        job(created_at=999.0, job_id="e" * 32),
    ]
    for record in records:
        store.create(record)
    expected = ids(sorted(records, key=lambda r: (r.created_at, r.id), reverse=True))
    assert ids(store.page()) == expected
    assert ids(store.page(limit=3)) == expected[:3]
    for size in (1, 2, 4):
        seen: list[str] = []
        page = store.page(limit=size)
        while page:
            seen.extend(ids(page))
            last = page[-1]
            page = store.page(limit=size, after=(last.created_at, last.id))
        assert seen == expected, f"pages of {size}"


def test_pages_filter_by_status_and_target(store: JobStore) -> None:
    records = [
        job("caption", created_at=1.0, status="queued"),
        job("answer", created_at=2.0, status="succeeded", finished_at=3.0),
        job("caption", created_at=3.0, status="succeeded", finished_at=4.0),
        job("caption", created_at=4.0, status="running"),
        job("answer", created_at=5.0, status="queued"),
    ]
    for record in records:
        store.create(record)
    newest_first = list(reversed(records))
    queued = [r for r in newest_first if r.status == "queued"]
    assert ids(store.page(status="queued")) == ids(queued)
    assert ids(store.page(target="caption")) == ids(
        [r for r in newest_first if r.target == "caption"]
    )
    both = store.page(status="succeeded", target="caption")
    assert ids(both) == [records[2].id]
    assert store.page(status="expired") == []
    assert store.page(target="nothing") == []
    # a filter holds across pages too
    first = store.page(target="caption", limit=1)
    rest = store.page(target="caption", after=(first[0].created_at, first[0].id))
    assert ids(first + rest) == ids([r for r in newest_first if r.target == "caption"])


def test_a_status_filter_follows_updates(store: JobStore) -> None:
    record = job()
    store.create(record)
    store.update(record.id, lambda r: r.model_copy(update={"status": "running"}))
    assert store.page(status="queued") == []
    assert ids(store.page(status="running")) == [record.id]


def test_active_is_every_queued_or_running_record_oldest_first(store: JobStore) -> None:
    records = [
        job(created_at=5.0, status="running"),
        job(created_at=1.0, status="queued"),
        job(created_at=3.0, status="failed", finished_at=4.0),
        job(created_at=2.0, status="queued", job_id="b" * 32),
        job(created_at=2.0, status="running", job_id="a" * 32),
        job(created_at=4.0, status="cancelled", finished_at=4.0),
    ]
    for record in records:
        store.create(record)
    expected = sorted(
        (r for r in records if r.status in ("queued", "running")),
        key=lambda r: (r.created_at, r.id),
    )
    assert ids(store.active()) == ids(expected)


def test_position_counts_the_queued_records_created_before(store: JobStore) -> None:
    records = [
        job(created_at=1.0, job_id="1" * 32),
        job(created_at=2.0, job_id="2" * 32, status="running"),
        job(created_at=3.0, job_id="b" * 32),
        job(created_at=3.0, job_id="a" * 32),
        job(created_at=4.0, job_id="4" * 32),
    ]
    for record in records:
        store.create(record)
    first, running, tie_b, tie_a, last = records
    assert store.position(first) == 0
    assert store.position(tie_a) == 1
    assert store.position(tie_b) == 2
    assert store.position(last) == 3
    # a record not queued: the queued ones created before it
    assert store.position(running) == 1
    store.update(first.id, lambda r: r.model_copy(update={"status": "running"}))
    assert store.position(tie_a) == 0 and store.position(last) == 2


def test_finished_before_lists_finished_records_oldest_first(store: JobStore) -> None:
    records = [
        job(created_at=1.0, status="succeeded", finished_at=30.0),
        job(created_at=2.0, status="failed", finished_at=10.0),
        job(created_at=3.0, status="cancelled", finished_at=20.0),
        job(created_at=4.0, status="expired", finished_at=25.0),
        job(created_at=5.0, status="succeeded", finished_at=50.0),
        job(created_at=6.0, status="running"),
        job(created_at=7.0, status="queued"),
    ]
    for record in records:
        store.create(record)
    assert ids(store.finished_before(30.0)) == ids([records[1], records[2], records[3]])
    assert ids(store.finished_before(100.0, limit=2)) == ids([records[1], records[2]])
    assert store.finished_before(10.0) == []
    # a record finishing later is found once it has
    running = records[5]
    store.update(
        running.id, lambda r: r.model_copy(update={"status": "failed", "finished_at": 5.0})
    )
    assert ids(store.finished_before(10.0)) == [running.id]


def test_delete_removes_the_record_its_events_and_its_index_entries(store: JobStore) -> None:
    keep, gone = job(created_at=1.0), job(created_at=2.0, status="failed", finished_at=3.0)
    for record in (keep, gone):
        store.create(record)
        store.add_event(record.id, {"type": "step_started", "step": "one"})
    store.delete(gone.id)
    assert store.get(gone.id) is None
    assert store.events(gone.id) == []
    assert ids(store.page()) == [keep.id]
    assert store.page(status="failed") == []
    assert store.finished_before(100.0) == []
    assert store.events(keep.id) == [{"type": "step_started", "step": "one"}]
    store.delete(gone.id)  # deleting twice is harmless
    # a deleted id can be created afresh
    store.create(gone)
    assert store.get(gone.id) == gone


def test_events_append_in_order_read_from_an_index_and_clear(store: JobStore) -> None:
    record = job()
    store.create(record)
    events = [{"type": "step_started", "step": f"s{i}", "data": {"n": [i]}} for i in range(5)]
    for event in events:
        store.add_event(record.id, event)
    assert store.events(record.id) == events
    assert store.events(record.id, 3) == events[3:]
    assert store.events(record.id, 5) == []
    store.clear_events(record.id)
    assert store.events(record.id) == []
    # after a clear, numbering starts again from 0 (a job run again reports anew)
    store.add_event(record.id, events[0])
    assert store.events(record.id, 0) == [events[0]]
    assert store.events("0" * 32) == []


def test_workers_beat_and_are_forgotten(store: JobStore) -> None:
    assert store.workers() == {}
    store.beat("w1", 100.5)
    store.beat("w2", 200.0)
    store.beat("w1", 150.25)  # a beat renews
    assert store.workers() == {"w1": 150.25, "w2": 200.0}
    store.forget_worker("w1")
    assert store.workers() == {"w2": 200.0}
    store.forget_worker("nobody")
    assert store.workers() == {"w2": 200.0}


def test_another_store_object_sees_the_same_data(opener: Opener) -> None:
    one, two = opener(), opener()
    record = job()
    one.create(record)
    one.add_event(record.id, {"type": "x"})
    one.beat("w", 9.0)
    assert two.get(record.id) == record
    assert two.events(record.id) == [{"type": "x"}]
    assert two.workers() == {"w": 9.0}
