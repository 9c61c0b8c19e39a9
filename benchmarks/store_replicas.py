"""Served search throughput with 1, 2 and 4 store reader replicas (``store.replicas``).

One private Ray; one LanceDB collection (``--items`` x 512, exact search: no ANN index, whose
build takes minutes on 2 busy cores) filled once in a temporary folder; then, per reader count,
the app is deployed (a weight-free ``fake`` text encoder, the store writer and N readers on
that folder) and ``POST /v1/collections/bench/search`` is driven at ``--concurrency`` for
``--duration`` seconds after a warm-up. Measured per point: searches/s, p50/p99, and the CPU
time the store replicas (writer + readers) and the ingress used per search (psutil, their
processes found in Ray's actor table). ``0`` readers is today's single store replica.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.store_replicas                    # 1, 2, 4 readers, c=16
    .venv/bin/python -m benchmarks.store_replicas --readers 0,1,2,4 --duration 30

Writes ``benchmarks/results/store_replicas.{json,md}`` and prints the table. On a machine with
fewer cores than replicas the readers share the cores with the proxy, the ingress and the load
generator, so the gain is bounded; the CPU per search says what more cores would give (see
the notes in the markdown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.suite.loadgen import post_once, run_load
from mmserve.config import AppConfig
from mmserve.models.backends.fake import FakeBackend
from mmserve.serve.plan import APP_NAME, INGRESS_NAME, STORE_NAME, STORE_READER_NAME
from mmserve.stores import Item, Payload
from mmserve.stores.lancedb_store import LanceDBStore

COLLECTION = "bench"
DIM = 512
#: Exact search: every search scans the collection (CPU-bound in the replica that answers).
STORE_OPTIONS = {"index_type": "none"}


def _config(folder: Path, readers: int) -> AppConfig:
    return AppConfig.from_dict(
        {
            "models": {
                "text_encoder": {"backend": "fake", "source": f"fake://dim={DIM}", "cpus": 0.1}
            },
            "store": {
                "kind": "lancedb",
                "path": str(folder / "store"),
                "replicas": readers,
                "options": STORE_OPTIONS,
            },
            "workflows": [],
            "agents": [],
            "server": {"web": False},
        },
        base_dir=folder,
    )


def _fill(config: AppConfig, items: int) -> float:
    """The collection, written straight into the store folder; returns seconds taken."""
    started = time.perf_counter()
    space = FakeBackend(config.models["text_encoder"].to_spec()).space
    store = LanceDBStore(config.store_location(), STORE_OPTIONS)
    store.create_collection(COLLECTION, space=space, modality="text")
    rng = np.random.default_rng(0)
    for start in range(0, items, 5000):
        count = min(5000, items - start)
        vectors = rng.standard_normal((count, DIM)).astype(np.float32)
        batch = [
            Item(id=f"i{start + n}", vector=vectors[n], payload=Payload(text=f"item {start + n}"))
            for n in range(count)
        ]
        store.upsert(COLLECTION, batch, space=space)
    store.optimize(COLLECTION)  # compacts (and indexes the ids); no vector index
    return time.perf_counter() - started


def _replica_processes() -> dict[str, list[psutil.Process]]:
    """The app's store and ingress replicas' processes, by deployment (Ray's actor table)."""
    from ray._private.state import actors

    wanted = {f"ServeReplica:{APP_NAME}:{name}": name for name in (STORE_NAME, STORE_READER_NAME)}
    wanted[f"ServeReplica:{APP_NAME}:{INGRESS_NAME}"] = INGRESS_NAME
    found: dict[str, list[psutil.Process]] = {name: [] for name in wanted.values()}
    for actor in actors().values():
        name = wanted.get(actor["ActorClassName"])
        if name is not None and actor["State"] == "ALIVE" and actor["Pid"]:
            found[name].append(psutil.Process(int(actor["Pid"])))
    return found


def _cpu_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def _point(url: str, args: argparse.Namespace, readers: int) -> dict[str, Any]:
    target = f"{url}/v1/collections/{COLLECTION}/search"

    def body(i: int) -> dict[str, Any]:
        return {"text": f"query {i % 997}", "top_k": 10, "include_images": False}

    answer = post_once(target, body(0))
    assert answer.status_code == 200 and len(answer.json()["matches"]) == 10, answer.text
    asyncio.run(
        run_load(target, body, concurrency=args.concurrency, duration_s=args.warmup, warmup_s=0)
    )
    processes = _replica_processes()
    store = processes[STORE_NAME] + processes[STORE_READER_NAME]
    assert len(processes[STORE_READER_NAME]) == readers, processes
    before = (_cpu_s(store), _cpu_s(processes[INGRESS_NAME]), time.perf_counter())
    result = asyncio.run(
        run_load(target, body, concurrency=args.concurrency, duration_s=args.duration, warmup_s=0)
    )
    wall = time.perf_counter() - before[2]
    store_cpu = _cpu_s(store) - before[0]
    ingress_cpu = _cpu_s(processes[INGRESS_NAME]) - before[1]
    searches = max(result["calls"], 1)
    return {
        "readers": readers,
        **result,
        "store_cpu_ms_per_search": round(store_cpu / searches * 1000, 3),
        "ingress_cpu_ms_per_search": round(ingress_cpu / searches * 1000, 3),
        "store_cores_busy": round(store_cpu / wall, 2),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray

    from mmserve.deploy.session import ServeSession
    from mmserve.serve.plan import proxy_env

    points = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first = _config(folder, args.readers[0])
        os.environ.update(proxy_env(first))  # Ray's proxy reads these (as `mmserve serve`)
        # Ray first: it forks its processes from this one, which then must not hold LanceDB
        ray.init(address="local", num_cpus=max(os.cpu_count() or 2, 4), include_dashboard=False)
        try:
            print(f"filling {args.items} x {DIM} ...", flush=True)
            print(f"filled in {_fill(first, args.items):.1f} s", flush=True)
            for readers in args.readers:
                session = ServeSession(_config(folder, readers), port=args.port)
                url = session.start()
                try:
                    point = _point(url, args, readers)
                finally:
                    session.stop()
                print(json.dumps(point), flush=True)
                points.append(point)
        finally:
            ray.shutdown()
    return points


def markdown(points: list[dict[str, Any]], args: argparse.Namespace) -> str:
    machine = platform.processor() or platform.machine()
    lines = [
        f"# Served search throughput by store reader replicas (c={args.concurrency})",
        "",
        f"{args.items} x {DIM} LanceDB collection (exact search), "
        f"`POST /v1/collections/{COLLECTION}/search` top_k 10 without images, fake text "
        f"encoder; {args.duration:g} s per point after {args.warmup:g} s warm-up; "
        f"{os.cpu_count()} cores ({machine}). 0 readers: the writer answers every search "
        "(as before).",
        "",
        "| readers | searches/s | p50 ms | p99 ms | errors | store CPU ms/search "
        "| ingress CPU ms/search | store cores busy |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p['readers']} | {p['throughput']:.1f} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} "
            f"| {p['errors']} | {p['store_cpu_ms_per_search']:.2f} "
            f"| {p['ingress_cpu_ms_per_search']:.2f} | {p['store_cores_busy']:.2f} |"
        )
    if points:
        store_ms = max(min(p["store_cpu_ms_per_search"] for p in points), 1e-3)
        ingress_ms = max(min(p["ingress_cpu_ms_per_search"] for p in points), 1e-3)
        lines += [
            "",
            f"One store replica on a free core answers at most ~{1000 / store_ms:.0f} "
            f"searches/s ({store_ms:.2f} ms CPU each); N readers on N free cores, N times that, "
            f"until the ingress (~{1000 / ingress_ms:.0f} searches/s per replica at "
            f"{ingress_ms:.2f} ms CPU each: raise `server.ingress_replicas` with the readers) "
            "or the shared storage becomes the bound. On a machine whose cores are all busy "
            "(the proxy, the ingress, the encoder and the load generator share them here) more "
            "readers add no throughput: the figures above measure the overhead, not the "
            "ceiling.",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.store_replicas", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--readers",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[1, 2, 4],
        help="Comma-separated reader replica counts, e.g. 0,1,2,4 (0: the writer only).",
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds measured per point.")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--name", default="store_replicas")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    points = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "points": points}
    (args.out / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    text = markdown(points, args)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
