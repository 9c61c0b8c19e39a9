"""A closed-loop HTTP load generator (async httpx), loopback only.

``concurrency`` workers each send one request, wait for its answer and send the next, so
exactly ``concurrency`` requests are in flight. A warm-up phase runs first and is not
measured; the measured window then lasts ``duration_s`` or until ``max_requests`` answers,
whichever comes first. Only answers that complete inside the window count; throughput is
those answers per second of window.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx

from benchmarks.suite.stats import summarise

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: mmserve's answers carry a trace with the batch size each step rode in.
_BATCH_SIZE = re.compile(rb'"batch_size":\s*(\d+)')


@dataclass
class _Window:
    start: float
    end: float
    max_requests: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    batch_sizes: list[int] = field(default_factory=list)
    closed_at: float | None = None

    def record(self, started: float, finished: float, ok: bool, error: str, body: bytes) -> None:
        if self.closed_at is not None or not (self.start <= finished <= self.end):
            return
        if ok:
            self.latencies.append(finished - started)
            self.batch_sizes += [int(size) for size in _BATCH_SIZE.findall(body)]
        else:
            self.errors += 1
            self.first_error = self.first_error or error
        if len(self.latencies) + self.errors >= self.max_requests:
            self.closed_at = finished

    def over(self, now: float) -> bool:
        return self.closed_at is not None or now >= self.end


async def run_load(
    url: str,
    body_for: Callable[[int], dict[str, Any]],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    max_requests: int = 1_000_000,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Drive ``url`` with POSTs of ``body_for(i)``; returns :func:`summarise`'s dict."""
    host = urlparse(url).hostname
    if host not in _LOOPBACK:
        raise ValueError(f"the load generator only targets loopback, not {host!r}")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = iter(range(10**9))
    now = time.perf_counter()
    window = _Window(now + warmup_s, now + warmup_s + duration_s, max_requests)
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as client:

        async def worker() -> None:
            while not window.over(time.perf_counter()):
                index = next(counter)
                started = time.perf_counter()
                body = b""
                try:
                    response = await client.post(url, json=body_for(index))
                    ok, body = response.status_code == 200, response.content
                    error = "" if ok else response.text[:300]
                except httpx.HTTPError as exc:
                    ok, error = False, f"{type(exc).__name__}: {exc}"
                window.record(started, time.perf_counter(), ok, error, body)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = (window.closed_at or window.end) - window.start
    result = summarise(window.latencies, wall_s=wall, errors=window.errors)
    if window.first_error:
        result["first_error"] = window.first_error
    result["concurrency"] = concurrency
    if window.batch_sizes:
        result["mean_batch"] = round(sum(window.batch_sizes) / len(window.batch_sizes), 2)
    return result


def post_once(url: str, body: dict[str, Any], *, timeout_s: float = 300.0) -> httpx.Response:
    """One synchronous POST (readiness checks, sanity checks)."""
    return httpx.post(url, json=body, timeout=timeout_s)
