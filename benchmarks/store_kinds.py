"""Each store kind through the mmserve store API, for ``store_search``: the vectors, ingest,
index build, timed searches and recall@10.

Vectors: N unit vectors of dimension D clustered like real embeddings (points at cosine ~0.8
around N/100 random centres); queries are held-out points of the same distribution, and the
truth is the exact top 10 by cosine (numpy). Ingest is ``store.upsert`` in batches of 1000
(the call an ingest makes after embedding, so embedding cost, equal for every store, is left
out). Searches are one ``store.search`` at a time (top 10, payload included), with the CPU
time this process spent per search (all threads: Milvus Lite's engine runs in it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Payload, VectorStore, open_store_at

K = 10
BATCH = 1000
PLUGIN_SOURCE = Path(__file__).resolve().parents[1] / "plugins" / "mmserve-milvus" / "src"
SPACE_NAME = "synthetic"


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


def vectors(n: int, dim: int, n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` data vectors, ``n_queries`` queries and their exact top 10 (seeded by ``n``)."""
    rng = np.random.default_rng(n)
    centres = rng.standard_normal((max(1, n // 100), dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = clustered(n, dim, rng, centres)
    queries = clustered(n_queries, dim, rng, centres)
    return data, queries, exact_top_k(data, queries, K)


def import_milvus_plugin() -> None:
    """Register the ``milvus`` store kind from the plugin's source folder."""
    if str(PLUGIN_SOURCE) not in sys.path:
        sys.path.insert(0, str(PLUGIN_SOURCE))
    import mmserve_milvus  # noqa: F401  (importing registers the store kind)


def store_location(kind: str, folder: Path) -> str:
    return str(folder / ("milvus.db" if kind == "milvus" else kind))


def open_bench_store(kind: str, folder: Path, options: dict[str, Any]) -> VectorStore:
    if kind == "milvus":
        import_milvus_plugin()
    return open_store_at(kind, store_location(kind, folder), options)


def drain_milvus_lite(folder: Path, collection: str) -> None:
    """Wait for Milvus Lite's background compaction and index build (it indexes sealed
    segments in a worker thread after a flush), so that searches are timed on the built index
    and the build counts in the index time. Private engine API: benchmark only."""
    from milvus_lite.server_manager import server_manager_instance

    path = str(Path(store_location("milvus", folder)).resolve())
    _, db, _ = server_manager_instance._servers[path]
    db.get_collection(collection)._wait_for_bg()


def space(dim: int) -> EmbeddingSpace:
    return EmbeddingSpace(backend="bench", model_id=SPACE_NAME, dim=dim)


def ingest(store: VectorStore, data: np.ndarray) -> float:
    """Upsert ``data`` into a new collection ``bench``; items/s."""
    dim = space(data.shape[1])
    store.create_collection("bench", space=dim, modality="text")
    start = time.perf_counter()
    for begin in range(0, len(data), BATCH):
        items = [
            Item(id=str(begin + j), vector=v, payload=Payload(text=f"item {begin + j}"))
            for j, v in enumerate(data[begin : begin + BATCH])
        ]
        store.upsert("bench", items, space=dim)
    return len(data) / (time.perf_counter() - start)


def timed_searches(
    store: VectorStore, queries: np.ndarray, truth: np.ndarray, *, before: Callable[[], None]
) -> dict[str, float]:
    """p50/p99 ms, CPU ms per search and recall@10 of one ``store.search`` at a time
    (``before`` runs once first, outside the timing: a query setting, say)."""
    before()
    dim = space(queries.shape[1])
    store.search("bench", queries[0], space=dim, top_k=K)  # warm caches (index, files)
    latencies, recalls = [], []
    cpu_start = time.process_time()  # every thread of this process, an engine's included
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        matches = store.search("bench", query, space=dim, top_k=K)
        latencies.append((time.perf_counter() - start) * 1000)
        recalls.append(len({int(m.id) for m in matches} & {int(i) for i in expected}) / K)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(queries)
    return {
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "cpu_ms_per_search": round(cpu_ms, 2),
        "recall_at_10": round(float(np.mean(recalls)), 4),
    }


def build_index(kind: str, store: VectorStore, folder: Path) -> float:
    """``optimize`` (each store's own index build), waited for; seconds."""
    start = time.perf_counter()
    store.optimize("bench")
    if kind == "milvus":
        drain_milvus_lite(folder, "bench")
    return time.perf_counter() - start


def nothing() -> None:
    return None
