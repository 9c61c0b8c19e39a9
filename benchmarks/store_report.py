"""The markdown report of ``benchmarks.store_search``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.store_kinds import K

_NAMES = {"lancedb": "LanceDB", "milvus": "Milvus Lite"}
#: LanceDB's default query settings (LanceDBOptions), marked in the sweep.
_DEFAULTS = (20, 10)


def _row(store: str, index: str, timing: dict[str, Any], build: str, ingest: str) -> str:
    return (
        f"| {store} | {index} | {ingest} | {build} | {timing['p50_ms']} | {timing['p99_ms']} | "
        f"{timing['cpu_ms_per_search']} | {timing['recall_at_10']} |"
    )


def write_markdown(results: dict[str, Any], path: Path) -> None:
    lines = [
        "# Vector store search, recall and ingest: LanceDB and Milvus Lite",
        "",
        f"Command: `{results['command']}` ({results['wall_s']} s in all, "
        f"{results.get('cpu_s', '?')} CPU s)",
        "",
        f"Machine: {results['machine']}; {results['items']} x {results['dim']} clustered unit "
        f"vectors, {results['queries']} held-out queries, top {K}, one `store.search` at a "
        "time (payload included); recall@10 against exact numpy top 10; CPU ms is every "
        "thread of the process per search (Milvus Lite's engine runs in it).",
        "",
        "| store | index (parameters) | ingest items/s | index build s | p50 ms | p99 ms "
        "| CPU ms | recall@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in results["runs"]:
        name = _NAMES.get(run["store"], run["store"])
        ingest = str(run["ingest_items_per_s"])
        if "exact" in run:
            scan = f"none (exact scan, {run.get('exact_queries', results['queries'])} queries)"
            lines.append(_row(name, scan, run["exact"], "-", ingest))
        lines.append(_row(name, run["index"], run["search"], str(run["index_build_s"]), ingest))
    sweeps = [run for run in results["runs"] if run.get("sweep")]
    for run in sweeps:
        lines += [
            "",
            "LanceDB's query settings on the same IVF_PQ index:",
            "",
            "| nprobes | refine_factor | p50 ms | p99 ms | CPU ms | recall@10 |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in run["sweep"]:
            mark = " (default)" if (row["nprobes"], row["refine_factor"]) == _DEFAULTS else ""
            lines.append(
                f"| {row['nprobes']}{mark} | {row['refine_factor']} | {row['p50_ms']} | "
                f"{row['p99_ms']} | {row['cpu_ms_per_search']} | {row['recall_at_10']} |"
            )
    if results.get("ingest"):
        lines += [
            "",
            "Ingest end to end (`mmserve.local.ingest`: a .txt file, all-MiniLM-L6-v2 on CPU "
            "float32, "
            "batches of 64, each upserted before the next):",
            "",
            "| store | texts | seconds | items/s |",
            "|---|---:|---:|---:|",
        ]
        for ing in results["ingest"]:
            lines.append(
                f"| {_NAMES.get(ing['store'], ing['store'])} | {ing['texts']} | "
                f"{ing['seconds']} | {ing['items_per_s']} |"
            )
    lines += ["", "CPU seconds (every thread of the process):", ""]
    for run in results["runs"]:
        lines.append(
            f"- {_NAMES.get(run['store'], run['store'])}: ingest {run.get('ingest_cpu_s')} s, "
            f"index build {run.get('index_cpu_s')} s"
        )
    lines += ["", results["note"], ""]
    path.write_text("\n".join(lines))
