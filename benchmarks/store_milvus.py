"""LanceDB against Milvus Lite (the mmserve-milvus plugin): ingest, index, search, recall.

The same N clustered unit vectors of dimension D (``store_search.clustered``) go into a
LanceDB store and a Milvus Lite store through the mmserve store API (``upsert`` in batches of
1000, the call an ingest makes after embedding, so embedding cost, equal for both, is left
out); then ``optimize`` builds each store's default index (LanceDB: IVF_PQ, nprobes 20,
refine 10; Milvus Lite: HNSW, M 16, efConstruction 200, ef 100); then held-out queries are
timed one ``store.search`` at a time (top 10, payload included), with the CPU time this
process spent per search (all threads: Milvus Lite's engine runs in it), recall@10 against
exact numpy top-10.

Run (from the repository root)::

    .venv/bin/python -m benchmarks.store_milvus --items 20000 --queries 200

Writes benchmarks/results/store_milvus.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.store_search import K, clustered, exact_top_k
from mmserve.models.base import EmbeddingSpace
from mmserve.stores import Item, Payload, VectorStore, open_store_at

RESULTS = Path(__file__).parent / "results"
PLUGIN_SOURCE = Path(__file__).resolve().parents[1] / "plugins" / "mmserve-milvus" / "src"
BATCH = 1000


def _open(kind: str, folder: Path, options: dict[str, Any]) -> VectorStore:
    if kind == "milvus":
        sys.path.insert(0, str(PLUGIN_SOURCE))
        import mmserve_milvus  # noqa: F401  (registers the store kind)

        return open_store_at("milvus", str(folder / "milvus.db"), options)
    return open_store_at(kind, str(folder / kind), options)


def _drain_milvus_lite(path: Path) -> None:
    """Wait for Milvus Lite's background compaction and index build (it indexes sealed
    segments in a worker thread after a flush), so that searches are timed on the built index
    and the build counts in ``optimize_s``. Private engine API: benchmark only."""
    from milvus_lite.server_manager import server_manager_instance

    _, db, _ = server_manager_instance._servers[str(path.resolve())]
    db.get_collection("bench")._wait_for_bg()


def bench_store(
    kind: str,
    options: dict[str, Any],
    data: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    folder: Path,
) -> dict[str, Any]:
    space = EmbeddingSpace(backend="bench", model_id="synthetic", dim=data.shape[1])
    store = _open(kind, folder, options)
    store.create_collection("bench", space=space, modality="text")
    start = time.perf_counter()
    for begin in range(0, len(data), BATCH):
        items = [
            Item(id=str(begin + j), vector=v, payload=Payload(text=f"item {begin + j}"))
            for j, v in enumerate(data[begin : begin + BATCH])
        ]
        store.upsert("bench", items, space=space)
    ingest_s = time.perf_counter() - start
    start = time.perf_counter()
    store.optimize("bench")
    if kind == "milvus":
        _drain_milvus_lite(folder / "milvus.db")
    index_s = time.perf_counter() - start
    latencies, recalls = [], []
    store.search("bench", queries[0], space=space, top_k=K)  # warm caches
    cpu_start = time.process_time()  # every thread of this process, the engine's included
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        matches = store.search("bench", query, space=space, top_k=K)
        latencies.append((time.perf_counter() - start) * 1000)
        recalls.append(len({int(m.id) for m in matches} & {int(i) for i in expected}) / K)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(queries)
    store.close()
    result = {
        "store": kind,
        "options": options,
        "ingest_items_per_s": round(len(data) / ingest_s),
        "optimize_s": round(index_s, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "cpu_ms_per_search": round(cpu_ms, 2),
        "recall_at_10": round(float(np.mean(recalls)), 4),
    }
    print(result, file=sys.stderr)
    return result


def write_markdown(results: dict[str, Any], path: Path) -> None:
    lines = [
        "# LanceDB vs Milvus Lite (mmserve store API)",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']}; {results['items']} x {results['dim']} clustered unit "
        f"vectors, {results['queries']} queries, top {K}, one search at a time.",
        "",
        "| store | index (options) | ingest items/s | optimize s | p50 ms | p99 ms | CPU ms "
        "| recall@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in results["runs"]:
        options = ", ".join(f"{k}: {v}" for k, v in run["options"].items()) or "defaults"
        lines.append(
            f"| {run['store']} | {options} | {run['ingest_items_per_s']} | {run['optimize_s']} | "
            f"{run['p50_ms']} | {run['p99_ms']} | {run.get('cpu_ms_per_search', '-')} | "
            f"{run['recall_at_10']} |"
        )
    lines += ["", results["note"], ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--note", default="", help="Free text about the machine's load.")
    args = parser.parse_args()
    rng = np.random.default_rng(args.items)
    centres = rng.standard_normal((max(1, args.items // 100), args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = clustered(args.items, args.dim, rng, centres)
    queries = clustered(args.queries, args.dim, rng, centres)
    truth = exact_top_k(data, queries, K)
    configs: list[tuple[str, dict[str, Any]]] = [
        ("lancedb", {"index_min_rows": 256}),
        ("milvus", {}),
        ("milvus", {"index_type": "ivf_flat", "nlist": 128, "nprobe": 16}),
    ]
    runs = []
    for kind, options in configs:
        folder = Path(tempfile.mkdtemp(prefix="mmserve-bench-"))
        try:
            runs.append(bench_store(kind, options, data, queries, truth, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    results = {
        "command": shlex.join(["python", "-m", "benchmarks.store_milvus", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "items": args.items,
        "dim": args.dim,
        "queries": args.queries,
        "note": args.note,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store_milvus.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, RESULTS / "store_milvus.md")
    print((RESULTS / "store_milvus.md").read_text())


if __name__ == "__main__":
    main()
