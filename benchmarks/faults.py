"""The fault suite of issue 15: one Ray process SIGKILLed every ``--every`` seconds under load.

Starts ``mmserve serve --config CONFIG`` (its own embedded Ray), then for each process kind
runs ``--threads`` threads of ``mmserve.Client`` (default settings) looping the ``caption``
workflow for ``--seconds``, killing one process of that kind every ``--every`` seconds, and
prints a markdown table: requests, failed, p99 and max latency, the errors seen, and what
``/v1/health`` said meanwhile (seconds not ``ok``). Only descendants of the server it started
are killed, found by their process titles. Between kinds it waits for ``GET /v1/ready``.
Two more scenarios (:mod:`benchmarks.fault_scenarios`): ``ingest`` (``client.collections.add``
in batches while the store replica is killed; then the store is read: acknowledged items
lost, duplicated) and ``overload`` (on a server of its own with a captioner of known
capacity: 3x its capacity, open loop, then half of it; the 503s' shape and latency, the
recovery time). Not part of CI: it takes minutes.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.faults                                   # the issue's table
    .venv/bin/python -m benchmarks.faults --kinds model,ingress --seconds 20 --threads 4
    .venv/bin/python -m benchmarks.faults --kinds ingest,overload --config fake.yaml
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.fault_scenarios import HealthWatch, overload_config, p, run_ingest, run_overload
from mmserve import Client
from mmserve.config import AppConfig
from mmserve.serve.plan import APP_NAME

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "examples" / "images" / "red_circle.png"
#: Process kind -> the process title (Ray sets ``ray::<actor class>``) that finds it; the
#: captioner's deployment may serve other models too (``image_encoder+captioner``).
TITLES = {
    "model": f"ServeReplica:{APP_NAME}:(?:[^ ]*\\+)?captioner\\b",
    "ingress": f"ServeReplica:{APP_NAME}:ingress\\b",
    "proxy": "ProxyActor",
    "controller": "ServeController",
    "store": f"ServeReplica:{APP_NAME}:store\\b",
}
#: Scenarios beside the kills of TITLES (see benchmarks.fault_scenarios).
SCENARIOS = ("ingest", "overload")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[parent].append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children[todo.pop()]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _find(server: int, title: str) -> list[int]:
    pattern = re.compile(title.encode())
    pids = []
    for pid in _descendants(server):
        try:
            if pattern.search(Path(f"/proc/{pid}/cmdline").read_bytes()):
                pids.append(pid)
        except OSError:
            continue
    return sorted(pids)


def _wait_ready(
    url: str, timeout_s: float = 900.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while starting")
        try:
            if httpx.get(f"{url}/v1/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f}s")


def killer(server: int, title: str, *, seconds: float, every: float) -> Callable[..., int]:
    """A function that SIGKILLs one process titled ``title`` every ``every`` seconds for
    ``seconds`` (the first after ``min(every, seconds / 2)``) and returns the kills."""

    def kill(_stopped: Callable[[], bool] = lambda: False) -> int:
        kills = 0
        end = time.monotonic() + seconds
        next_kill = time.monotonic() + min(every, seconds / 2)
        while time.monotonic() < end:
            if time.monotonic() >= next_kill:
                victims = _find(server, title)
                if victims:
                    os.kill(victims[0], signal.SIGKILL)
                    kills += 1
                next_kill += every
            time.sleep(0.1)
        return kills

    return kill


def run_kind(
    url: str, server: int, kind: str, *, threads: int, seconds: float, every: float
) -> dict[str, object]:
    """Load for ``seconds`` with one ``kind`` process killed every ``every`` seconds."""
    image = IMAGE.read_bytes()
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with Client(url) as client:
            while not stop.is_set():
                start = time.monotonic()
                try:
                    client.run("caption", image=image)
                except Exception as exc:  # counted, not raised: the table is the result
                    with lock:
                        errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    continue
                with lock:
                    latencies.append(time.monotonic() - start)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    kills = killer(server, TITLES[kind], seconds=seconds, every=every)()
    stop.set()
    for worker in workers:
        worker.join(timeout=180)
    failed = sum(errors.values())
    return {
        "kind": kind,
        "kills": kills,
        "requests": len(latencies) + failed,
        "failed": failed,
        "p99_s": p(latencies, 0.99),
        "max_s": max(latencies, default=0.0),
        "errors": dict(errors),
    }


@contextmanager
def serving(config: str) -> Iterator[tuple[str, int, Path]]:
    """``mmserve serve --config config`` on a free port, ready: (url, server pid, log)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mmserve = str(Path(sys.executable).with_name("mmserve"))
    log_path = Path(tempfile.mkdtemp(prefix="mmserve-faults-")) / "serve.log"
    print(f"server log: {log_path}", file=sys.stderr)
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        for attempt in (1, 2):  # Ray may time out starting on a busy machine: once more
            server = subprocess.Popen(
                [mmserve, "serve", "--config", config, "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the teardown stops what it started
            )
            try:
                _wait_ready(url, process=server)
                break
            except RuntimeError as exc:
                print(f"{exc} (attempt {attempt}); see {log_path}", file=sys.stderr)
                if attempt == 2:
                    raise
        try:
            yield url, server.pid, log_path
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _kills(url: str, server: int, kinds: list[str], args: argparse.Namespace) -> list[Any]:
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        with HealthWatch(url) as health:
            if kind == "ingest":
                kill = killer(server, TITLES["store"], seconds=args.seconds, every=args.every)
                config = AppConfig.load(args.config)
                row = run_ingest(url, config, kill, threads=args.threads)
            else:
                row = run_kind(
                    url, server, kind, threads=args.threads, seconds=args.seconds, every=args.every
                )
            _wait_ready(url)
        row["health"] = f"{health.not_ok_s:.1f} s not ok: {health.summary()}"
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "deployments" / "tiny.yaml"))
    parser.add_argument("--kinds", default=",".join([*TITLES, *SCENARIOS]))
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--every", type=float, default=15.0)
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(TITLES) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}; known: {', '.join([*TITLES, *SCENARIOS])}")
    rows: list[dict[str, Any]] = []
    killed = [k for k in kinds if k != "overload"]
    if killed:
        with serving(args.config) as (url, server, _):
            rows = _kills(url, server, killed, args)
    overload = None
    if "overload" in kinds:
        folder = Path(tempfile.mkdtemp(prefix="mmserve-overload-"))
        config = folder / "overload.yaml"
        config.write_text(yaml.safe_dump(overload_config(folder)))
        with serving(str(config)) as (url, _, log_path):
            overload = run_overload(url, log_path, seconds=args.seconds)
    print(f"\n{args.threads} threads, {args.seconds:g} s per kind, a kill every {args.every:g} s")
    print("| process killed | kills | requests | failed | p99 s | max s | /v1/health | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        errors = "; ".join(f"{n}x {e}" for e, n in row["errors"].items()) or "-"
        name = "store replica (ingest)" if row["kind"] == "ingest" else row["kind"]
        print(
            f"| {name} | {row['kills']} | {row['requests']} | {row['failed']} | "
            f"{row['p99_s']:.2f} | {row['max_s']:.2f} | {row['health']} | {errors} |"
        )
    for row in rows:
        if row["kind"] == "ingest":
            print(
                f"\ningest: {row['items_acknowledged']} items acknowledged, "
                f"{row['items_lost']} lost, {row['items_duplicated']} duplicated "
                f"({row['rows']} rows; {row['items_foreign']} acknowledged ids not sent)"
            )
    if overload is not None:
        o = overload
        print(
            f"\noverload: capacity {o['capacity_rps']:.1f}/s, offered {o['offered_rps']:.1f}/s "
            f"for {args.seconds:g} s: {o['requests']} requests, {o['ok']} ok "
            f"(p99 {o['p99_ok_s']:.2f} s), {o['refused_503']} answered 503 "
            f"({o['refused_shaped']} with Retry-After and the error shape; p50 "
            f"{o['p50_503_ms']:.1f} ms, p99 {o['p99_503_ms']:.1f} ms at the client; in the "
            f"ingress p50 {o['ingress_p50_503_ms']:.1f} ms, p99 {o['ingress_p99_503_ms']:.1f} ms), "
            f"other {o['other'] or 0}; "
            f"load dropped to half capacity: refused until {o['recovery_s']:.2f} s after, "
            f"{o['after_failed']} of {o['after_requests']} not ok"
        )


if __name__ == "__main__":
    main()
