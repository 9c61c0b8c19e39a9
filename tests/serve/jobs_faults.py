"""The jobs fault drill, for an app serving ``slow_chain`` (shared_fake.SLOW_CHAIN) with a short
``jobs.lease_s``: 50 jobs of the slow workflow are submitted, then the job worker, the ingress
and the store replica are SIGKILLed while they run; every job must still end ``succeeded``,
with the outputs a synchronous run of the same inputs gives (docs/jobs.md, "Durability").
Used by test_jobs_served.py (the embedded SQLite broker) and test_jobs_redis_served.py."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import descendants, png_base64

#: Ten images of distinct colours: ten distinct captions.
COLOURS = [(r, g, b) for r in (20, 230) for g in (20, 120, 230) for b in (20, 230)][:10]
JOBS = 50


def _replica_pid(deployment: str) -> int:
    """The process of ``deployment``'s running replica in the app ``mmserve``: among this
    test's own descendants (the session's Ray), the one whose title names the replica."""
    title = re.compile(rf"ServeReplica:mmserve:{deployment}(?![\w:])".encode())
    found = []
    for pid in descendants(os.getpid()):
        try:
            if title.search(Path(f"/proc/{pid}/cmdline").read_bytes()):
                found.append(pid)
        except OSError:
            continue
    assert len(found) == 1, f"replicas of {deployment}: {found}"
    return found[0]


def _kill(deployment: str) -> int:
    pid = _replica_pid(deployment)
    os.kill(pid, signal.SIGKILL)
    return pid


def _get(url: str, *, deadline: float) -> Any:
    """GET ``url``'s JSON, waiting out a restarting ingress (refused connections, Serve's 5xx)."""
    while True:
        try:
            answer = httpx.get(url, timeout=10)
            if answer.status_code < 500:
                answer.raise_for_status()
                return answer.json()
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer in time")
        time.sleep(0.5)


def _wait(what: str, check: Callable[[], bool], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def fault_drill(url: str) -> None:
    """The drill (see the module docstring) against the app at ``url``."""
    images = [png_base64(colour) for colour in COLOURS]
    expected = []
    for image in images:
        answer = httpx.post(
            f"{url}/v1/workflows/slow_chain/run", json={"inputs": {"image": image}}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        expected.append(answer.json()["outputs"])
    assert len({e["caption"] for e in expected}) > 3  # jobs with different answers

    ids = []
    for n in range(JOBS):
        answer = httpx.post(
            f"{url}/v1/workflows/slow_chain/jobs",
            json={"inputs": {"image": images[n % len(images)]}},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])

    def running() -> bool:
        deadline = time.monotonic() + 120
        page = _get(f"{url}/v1/jobs?status=running&limit=1", deadline=deadline)
        return bool(page["jobs"])

    # kill the worker while jobs run (4 at a time, the others queued behind them)
    _wait("a job to run", running, timeout_s=120)
    killed_at = time.time()
    worker = _kill("jobs")
    _kill("ingress")
    _kill("store")

    deadline = time.monotonic() + 240
    while True:
        views = [_get(f"{url}/v1/jobs/{job}", deadline=deadline) for job in ids]
        if all(v["status"] not in ("queued", "running") for v in views):
            break
        assert time.monotonic() < deadline, [v["status"] for v in views]
        time.sleep(1.0)
    assert [v["status"] for v in views] == ["succeeded"] * JOBS, [v["error"] for v in views]
    assert [v["outputs"] for v in views] == [expected[n % len(images)] for n in range(JOBS)]
    # the jobs the killed worker was running were run again, by its successor
    again = [v["started_at"] - killed_at for v in views if v["attempts"] == 2]
    assert again
    # how long the killed worker's jobs took to run again (-s shows it): its lease, a sweep
    print(f"\njobs of the killed worker started again after {min(again):.1f}-{max(again):.1f} s")
    assert _replica_pid("jobs") != worker
