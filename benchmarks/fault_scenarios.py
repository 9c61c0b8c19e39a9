"""The fault suite's other scenarios (see :mod:`benchmarks.faults`): ingest while the store
replica is killed, overload at 3x capacity, and a watch on ``/v1/health`` during kills."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mmserve import Client
from mmserve.config import AppConfig
from mmserve.stores import open_store
from mmserve.stores.contract import content_id

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "examples" / "images" / "red_circle.png"

#: The overload app: every role weight-free, the captioner of known capacity (a call takes
#: DELAY_MS asleep, BATCH items a call: BATCH / DELAY_MS items/s), its queue bounded.
DELAY_MS = 400
BATCH = 4
QUEUE = 8


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class HealthWatch:
    """Polls ``/v1/health`` every half second in a thread; what it saw while not ``ok``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.not_ok_s = 0.0
        self.seen: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _poll(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.wait(0.5):
                try:
                    body = http.get(f"{self.url}/v1/health").json()
                except (httpx.HTTPError, ValueError) as exc:
                    self.not_ok_s += 0.5
                    self.seen[f"no answer ({type(exc).__name__})"] += 1
                    continue
                if body.get("status") != "ok":
                    self.not_ok_s += 0.5
                    replicas = {
                        name: f"{d.get('status')}/{d.get('replicas')}"
                        for name, d in (body.get("deployments") or {}).items()
                        if not d.get("ready")
                    }
                    self.seen[f"{body.get('status')} {replicas or '(no deployments)'}"] += 1

    def summary(self) -> str:
        return "; ".join(f"{n}x {s}" for s, n in self.seen.most_common(3)) or "-"


def run_ingest(
    url: str,
    config: AppConfig,
    kill: Callable[[Callable[[], bool]], int],
    *,
    threads: int,
    batch: int = 8,
) -> dict[str, Any]:
    """``threads`` clients adding batches of new texts to one collection while ``kill``
    SIGKILLs store replicas; then the store itself is read: every acknowledged item there
    (lost: those missing), and one row per id (duplicates: rows beyond the distinct ids)."""
    name = f"faults_ingest_{int(time.time())}"
    attempted: list[str] = []
    acknowledged: set[str] = set()
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with Client(url) as client:
            for round_ in range(1_000_000):
                if stop.is_set():
                    return
                texts = [f"item {worker}-{round_}-{j} of the ingest" for j in range(batch)]
                with lock:
                    attempted.extend(texts)
                start = time.monotonic()
                try:
                    ids = client.collections.add(name, texts=texts)["ids"]
                except Exception as exc:  # counted, not raised: the table is the result
                    with lock:
                        errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    continue
                with lock:
                    acknowledged.update(ids)
                    latencies.append(time.monotonic() - start)

    workers = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    kills = kill(stop.is_set)
    stop.set()
    for worker in workers:
        worker.join(timeout=180)
    store = open_store(config)  # the served store's folder, read beside the server
    every_id = [content_id(text=text) for text in attempted]
    present = store.existing_ids(name, every_id)
    rows = store.get_collection(name).count
    failed = sum(errors.values())
    return {
        "kind": "ingest",
        "kills": kills,
        "requests": len(latencies) + failed,
        "failed": failed,
        "p99_s": p(latencies, 0.99),
        "max_s": max(latencies, default=0.0),
        "errors": dict(errors),
        "items_acknowledged": len(acknowledged),
        "items_lost": len(acknowledged - present),
        "items_duplicated": rows - len(present),
        "items_foreign": len(acknowledged - set(every_id)),
        "rows": rows,
    }


def overload_config(folder: Path) -> dict[str, Any]:
    """The app of the overload scenario (see :data:`DELAY_MS`)."""
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1, "warmup": False}
    return {
        "models": {
            "image_encoder": fake,
            "text_encoder": fake,
            "vqa": fake,
            "captioner": {
                **fake,
                "source": f"fake://delay_ms={DELAY_MS}",
                "batch": {"max_size": BATCH},
                "max_ongoing_requests": BATCH,
                "max_queued_requests": QUEUE,
            },
        },
        "store": {"kind": "lancedb", "path": str(folder / "store")},
        "workflows": [str(ROOT / "workflows")],
        "agents": [],
    }


async def _open_loop(
    url: str, rate: float, seconds: float, body: bytes
) -> list[tuple[float, int, float, bool]]:
    """Requests sent at ``rate``/s for ``seconds`` whatever the answers (open loop): per
    request (sent at, status, latency, a 503 with Retry-After and the error shape)."""
    results: list[tuple[float, int, float, bool]] = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:

        async def one(sent: float) -> None:
            try:
                response = await http.post(
                    f"{url}/v1/workflows/caption/run", content=body, headers=headers
                )
            except httpx.HTTPError:
                results.append((sent, 0, time.monotonic() - sent, False))
                return
            latency = time.monotonic() - sent
            shaped = False
            if response.status_code == 503:
                try:
                    shaped = "code" in response.json()["error"]
                except (ValueError, KeyError, TypeError):
                    shaped = False
                shaped = shaped and "retry-after" in response.headers
            results.append((sent, response.status_code, latency, shaped))

        start = time.monotonic()
        tasks = []
        n = 0
        while (now := time.monotonic()) < start + seconds:
            due = start + n / rate
            if now < due:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one(time.monotonic())))
            n += 1
        await asyncio.gather(*tasks)
    return results


def _capacity(url: str, body: bytes, seconds: float) -> float:
    """Answers per second with BATCH + QUEUE requests always in flight (closed loop)."""
    done = 0
    stop = time.monotonic() + seconds

    def loop() -> None:
        nonlocal done
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < stop:
                response = http.post(
                    f"{url}/v1/workflows/caption/run",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                if response.status_code == 200:
                    done += 1

    workers = [threading.Thread(target=loop) for _ in range(BATCH)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return done / seconds


_ACCESS_503 = re.compile(r"mmserve_ingress .* POST /v1/workflows/\{name\}/run 503 ([0-9.]+)ms")


def ingress_503_ms(log: Path) -> list[float]:
    """The ingress's own time for each 503 run answer, from its access log lines in the
    server log: how long mmserve took to refuse, without the proxy and the client."""
    return [float(m.group(1)) for m in _ACCESS_503.finditer(log.read_text(errors="replace"))]


def run_overload(
    url: str, log: Path, *, seconds: float, recovery_seconds: float = 15.0
) -> dict[str, Any]:
    """Capacity first (closed loop), then 3x capacity open loop for ``seconds``, then half
    capacity for ``recovery_seconds``: the 503s' shape and latency, and how long after the
    load dropped requests were refused still (recovery)."""
    image = base64.b64encode(IMAGE.read_bytes()).decode("ascii")
    body = json.dumps({"inputs": {"image": image}}).encode()
    capacity = _capacity(url, body, 8.0)
    if capacity <= 0:
        raise SystemExit(f"no caption run succeeded at {url}; see the server log")
    over = asyncio.run(_open_loop(url, 3 * capacity, seconds, body))
    dropped = time.monotonic()
    after = asyncio.run(_open_loop(url, capacity / 2, recovery_seconds, body))
    refused = [r for r in over if r[1] == 503]
    last_bad = max((r[0] for r in after if r[1] != 200), default=dropped)
    return {
        "kind": "overload",
        "capacity_rps": capacity,
        "offered_rps": 3 * capacity,
        "requests": len(over),
        "ok": sum(r[1] == 200 for r in over),
        "refused_503": len(refused),
        "refused_shaped": sum(r[3] for r in refused),
        "other": dict(collections.Counter(r[1] for r in over if r[1] not in (200, 503))),
        "p50_503_ms": 1000 * p([r[2] for r in refused], 0.5),
        "p99_503_ms": 1000 * p([r[2] for r in refused], 0.99),
        "p99_ok_s": p([r[2] for r in over if r[1] == 200], 0.99),
        "ingress_p50_503_ms": p(ingress := ingress_503_ms(log), 0.5),
        "ingress_p99_503_ms": p(ingress, 0.99),
        "recovery_s": max(0.0, last_bad - dropped),
        "after_requests": len(after),
        "after_failed": sum(r[1] != 200 for r in after),
    }


__all__ = ["HealthWatch", "ingress_503_ms", "overload_config", "p", "run_ingest", "run_overload"]
