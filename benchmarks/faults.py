"""The fault suite of issue 15: one Ray process SIGKILLed every ``--every`` seconds under load.

Starts ``mmserve serve --config CONFIG`` (its own embedded Ray), then for each process kind
runs ``--threads`` threads of ``mmserve.Client`` (default settings) looping the ``caption``
workflow for ``--seconds``, killing one process of that kind every ``--every`` seconds, and
prints a markdown table: requests, failed, p99 and max latency, the errors seen. Only
descendants of the server it started are killed, found by their process titles. Between
kinds it waits for ``GET /v1/ready``. Not part of CI: it takes minutes.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.faults                                   # the issue's table
    .venv/bin/python -m benchmarks.faults --kinds model,ingress --seconds 20 --threads 4
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
from pathlib import Path

import httpx

from mmserve import Client
from mmserve.serving.plan import APP_NAME

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


def _wait_ready(url: str, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f}s")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


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
    kills = 0
    end = time.monotonic() + seconds
    next_kill = time.monotonic() + min(every, seconds / 2)
    while time.monotonic() < end:
        if time.monotonic() >= next_kill:
            victims = _find(server, TITLES[kind])
            if victims:
                os.kill(victims[0], signal.SIGKILL)
                kills += 1
            next_kill += every
        time.sleep(0.1)
    stop.set()
    for worker in workers:
        worker.join(timeout=180)
    failed = sum(errors.values())
    return {
        "kind": kind,
        "kills": kills,
        "requests": len(latencies) + failed,
        "failed": failed,
        "p99_s": _p(latencies, 0.99),
        "max_s": max(latencies, default=0.0),
        "errors": dict(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "deployments" / "tiny.yaml"))
    parser.add_argument("--kinds", default=",".join(TITLES))
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--every", type=float, default=15.0)
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(TITLES))
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}; known: {', '.join(TITLES)}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mmserve = str(Path(sys.executable).with_name("mmserve"))
    log_path = Path(tempfile.mkdtemp(prefix="mmserve-faults-")) / "serve.log"
    print(f"server log: {log_path}", file=sys.stderr)
    url = f"http://127.0.0.1:{port}"
    rows = []
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [mmserve, "serve", "--config", args.config, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the teardown stops exactly what it started
        )
        try:
            _wait_ready(url)
            for kind in kinds:
                rows.append(
                    run_kind(
                        url,
                        server.pid,
                        kind,
                        threads=args.threads,
                        seconds=args.seconds,
                        every=args.every,
                    )
                )
                _wait_ready(url)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    print(f"\n{args.threads} threads, {args.seconds:g} s per kind, a kill every {args.every:g} s")
    print("| process killed | kills | requests | failed | p99 s | max s | errors |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        errors = "; ".join(f"{n}x {e}" for e, n in row["errors"].items()) or "-"  # type: ignore[attr-defined]
        print(
            f"| {row['kind']} | {row['kills']} | {row['requests']} | {row['failed']} | "
            f"{row['p99_s']:.2f} | {row['max_s']:.2f} | {errors} |"
        )


if __name__ == "__main__":
    main()
