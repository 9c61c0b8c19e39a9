"""What many small writes do to a served collection, with and without the store's maintenance.

The store deployment (``mmserve.serve.store_server.StoreServer``, run here in process without Ray)
takes N single-item upserts -- what HTTP adds and the ``index`` step send -- then answers
searches. "off" never compacts (what every served write did before the store replica
optimised in the background); "on" is the shipped default (compact every
``OPTIMIZE_EVERY`` writes, prune versions older than ``keep_versions_s``, here 1 ms so that
the pruning shows within the run).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.store_writes              # 150 writes, 300 searches
    .venv/bin/python -m benchmarks.store_writes --writes 500

Prints a markdown table: data fragments, table versions, search p50/p95 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from mmserve.models.spec import EmbeddingSpace
from mmserve.serve.store_server import StoreServer
from mmserve.stores import Item, Payload
from mmserve.stores.lancedb_store import LanceDBStore

SPACE = EmbeddingSpace(backend="clip", model_id="bench", dim=512)


async def _measure(maintenance: bool, writes: int, searches: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        server = StoreServer(
            "lancedb",
            folder,
            {"keep_versions_s": 0.001},
            optimize_every=32 if maintenance else 10**9,
        )
        await server.create_collection("notes", space=SPACE, modality="text")
        for n in range(writes):
            vector = rng.standard_normal(SPACE.dim).astype(np.float32)
            item = Item(id=f"t{n}", vector=vector, payload=Payload(text=f"note {n}"))
            await server.upsert("notes", [item], space=SPACE)
        await server.maintenance_done()
        timings = []
        for _ in range(searches):
            query = rng.standard_normal(SPACE.dim).astype(np.float32)
            started = time.perf_counter()
            await server.search("notes", query, space=SPACE, top_k=5)
            timings.append((time.perf_counter() - started) * 1000)
        table, _ = LanceDBStore(folder)._open("notes")
        timings.sort()
        return {
            "maintenance": "on" if maintenance else "off",
            "fragments": table.stats()["fragment_stats"]["num_fragments"],
            "versions": len(table.list_versions()),
            "p50_ms": statistics.median(timings),
            "p95_ms": timings[int(0.95 * (len(timings) - 1))],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=150)
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.writes} single-item upserts, then {args.searches} searches (top 5, dim 512)\n")
    print("| maintenance | fragments | versions | search p50 ms | search p95 ms |")
    print("|---|---|---|---|---|")
    for maintenance in (False, True):
        row = asyncio.run(_measure(maintenance, args.writes, args.searches))
        print(
            f"| {row['maintenance']} | {row['fragments']} | {row['versions']} | "
            f"{row['p50_ms']:.2f} | {row['p95_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
