"""A job's state machine (:mod:`mmserve.jobs.lifecycle`): each transition applies to the
records it fits and declines (None) the others; races between workers are settled by the
store's atomic update (checked here on the SQLite store, with threads)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mmserve.jobs import lifecycle
from mmserve.jobs.records import JobRecord
from mmserve.jobs.sqlite_store import SqliteJobStore
from mmserve.jobs.store import Change, applied

pytestmark = pytest.mark.unit


def apply(record: JobRecord, change: Change) -> JobRecord | None:
    """``change`` on a copy of ``record`` (as the store hands it one)."""
    return change(record.model_copy(deep=True))


def done(record: JobRecord, change: Change) -> JobRecord:
    """``change`` applied to ``record``, which it must fit."""
    new = apply(record, change)
    assert new is not None, f"the change declined a {record.status} record"
    return new


def queued(**fields: object) -> JobRecord:
    return JobRecord(target="caption", **fields)  # type: ignore[arg-type]


def running(worker: str = "w1", **fields: object) -> JobRecord:
    return done(queued(**fields), lifecycle.claim(worker))


def test_hold_marks_the_worker_that_received_the_message() -> None:
    held = done(queued(), lifecycle.hold("w1"))
    assert held.held_by == "w1" and held.status == "queued"
    assert apply(held, lifecycle.hold("w1")) is None  # already its
    assert done(held, lifecycle.hold("w2")).held_by == "w2"  # the message went to another
    assert apply(running(), lifecycle.hold("w2")) is None


def test_a_queued_job_is_claimed_once() -> None:
    before = time.time()
    held = done(queued(), lifecycle.hold("w1"))
    claimed = done(held, lifecycle.claim("w1"))
    assert claimed.status == "running" and claimed.worker == "w1"
    assert claimed.held_by is None and claimed.attempt == 1
    assert claimed.started_at is not None and claimed.started_at >= before
    assert apply(claimed, lifecycle.claim("w2")) is None
    assert apply(claimed, lifecycle.claim("w1")) is None
    for final in ("succeeded", "failed", "cancelled", "expired"):
        assert apply(queued(status=final), lifecycle.claim("w1")) is None


def test_of_workers_racing_for_a_job_exactly_one_claims_it(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite")
    record = queued()
    store.create(record)
    workers = [f"w{i}" for i in range(8)]
    start = threading.Barrier(len(workers))
    won: list[str] = []

    def race(worker: str) -> None:
        start.wait()
        _, changed = applied(store, record.id, lifecycle.claim(worker))
        if changed:
            won.append(worker)

    threads = [threading.Thread(target=race, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    found = store.get(record.id)
    store.close()
    assert len(won) == 1
    assert found is not None and found.worker == won[0] and found.attempt == 1


def test_progress_and_finish_are_fenced_by_worker_and_attempt() -> None:
    job = running("w1")
    assert apply(job, lifecycle.progress("w2", 1, 1, 3)) is None
    assert apply(job, lifecycle.progress("w1", 2, 1, 3)) is None
    moved = done(job, lifecycle.progress("w1", 1, 2, 3))
    assert (moved.steps_done, moved.steps_total) == (2, 3)
    assert apply(moved, lifecycle.finish("w2", 1, "succeeded")) is None
    assert apply(moved, lifecycle.finish("w1", 2, "succeeded")) is None
    finished = done(moved, lifecycle.finish("w1", 1, "succeeded", steps_done=3))
    assert finished.status == "succeeded" and finished.steps_done == 3
    assert finished.finished_at is not None and finished.error is None
    # a finished job is no worker's run any more
    assert apply(finished, lifecycle.finish("w1", 1, "failed")) is None
    assert apply(finished, lifecycle.progress("w1", 1, 3, 3)) is None
    assert apply(queued(), lifecycle.finish("w1", 0, "succeeded")) is None


def test_a_failure_keeps_its_error() -> None:
    error = {"code": "model_error", "message": "boom", "status": 500}
    failed = done(running("w1"), lifecycle.finish("w1", 1, "failed", error=error))
    assert failed.status == "failed" and failed.error == error


def test_a_dead_workers_late_finish_is_ignored_after_the_job_was_run_again() -> None:
    first = running("w1")
    requeued = done(first, lifecycle.recover("w1"))
    second = done(requeued, lifecycle.claim("w2"))
    assert second.attempt == 2 and second.worker == "w2"
    assert apply(second, lifecycle.finish("w1", 1, "succeeded")) is None
    assert apply(second, lifecycle.progress("w1", 1, 3, 3)) is None
    assert done(second, lifecycle.finish("w2", 2, "succeeded")).status == "succeeded"


def test_cancel_ends_a_queued_job_at_once() -> None:
    cancelled = done(done(queued(), lifecycle.hold("w1")), lifecycle.cancel())
    assert cancelled.status == "cancelled" and cancelled.cancel_requested
    assert cancelled.finished_at is not None
    assert cancelled.started_at is None and cancelled.attempt == 0
    assert cancelled.error is None
    # and it can never be claimed afterwards
    assert apply(cancelled, lifecycle.claim("w1")) is None


def test_cancel_asks_a_running_job_to_stop() -> None:
    asked = done(running("w1"), lifecycle.cancel())
    assert asked.status == "running" and asked.cancel_requested
    assert asked.finished_at is None
    assert apply(asked, lifecycle.cancel()) is None  # asked once
    stopped = done(asked, lifecycle.finish("w1", 1, "cancelled"))
    assert stopped.status == "cancelled" and stopped.error is None


@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled", "expired"])
def test_cancel_does_not_apply_to_a_finished_job(final: str) -> None:
    assert apply(queued(status=final), lifecycle.cancel()) is None


def test_recover_frees_a_job_the_dead_worker_held() -> None:
    held = done(queued(), lifecycle.hold("dead"))
    held.rung_at = 0.0
    freed = done(held, lifecycle.recover("dead"))
    assert freed.status == "queued" and freed.held_by is None
    assert freed.rung_at > 0.0  # its message is sent again now
    assert apply(held, lifecycle.recover("alive")) is None
    assert apply(queued(), lifecycle.recover("dead")) is None


def test_recover_queues_a_repeatable_running_job_again() -> None:
    job = done(running("dead"), lifecycle.progress("dead", 1, 2, 3))
    requeued = done(job, lifecycle.recover("dead"))
    assert requeued.status == "queued"
    assert requeued.worker is None and requeued.held_by is None
    assert requeued.steps_done == 0 and requeued.finished_at is None
    assert requeued.attempt == 1  # counted again when it is claimed
    assert done(requeued, lifecycle.claim("w2")).attempt == 2
    assert apply(job, lifecycle.recover("someone-else")) is None


def test_recover_fails_a_running_job_with_side_effects_as_interrupted() -> None:
    job = running("dead", repeatable=False, side_effects=["tell", "pay"])
    failed = done(job, lifecycle.recover("dead"))
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.error is not None
    assert failed.error["code"] == lifecycle.INTERRUPTED == "interrupted"
    assert failed.error["status"] == 500
    assert failed.error["side_effects"] == ["tell", "pay"]
    assert "tell, pay" in failed.error["message"]
    assert "attempt 1" in failed.error["message"]


def test_recover_cancels_a_running_job_whose_cancel_was_asked() -> None:
    for repeatable in (True, False):
        asked = done(running("dead", repeatable=repeatable), lifecycle.cancel())
        cancelled = done(asked, lifecycle.recover("dead"))
        assert cancelled.status == "cancelled" and cancelled.error is None
        assert cancelled.finished_at is not None


@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled", "expired"])
def test_recover_leaves_a_finished_job(final: str) -> None:
    record = running("dead")
    record.status = final  # type: ignore[assignment]
    assert apply(record, lifecycle.recover("dead")) is None


def test_rung_marks_a_queued_jobs_message_as_sent_again() -> None:
    job = queued()
    job.rung_at = 0.0
    assert done(job, lifecycle.rung()).rung_at > 0.0
    assert apply(running(), lifecycle.rung()) is None


def test_expire_applies_to_finished_jobs_only() -> None:
    for final in ("succeeded", "failed", "cancelled"):
        record = queued(status=final, finished_at=1.0)
        expired = done(record, lifecycle.expire())
        assert expired.status == "expired"
        assert expired.finished_at is not None and expired.finished_at > 1.0
    for other in ("queued", "running", "expired"):
        assert apply(queued(status=other), lifecycle.expire()) is None
