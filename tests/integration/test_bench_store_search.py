"""`python -m benchmarks.store_search --quick` at a tiny N, as the README gives it, so the
benchmark cannot rot: both stores ingest, index and answer, the exact scan finds the exact top
10, and the report names each index with its parameters."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import store_search

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_mode_runs_both_stores_end_to_end(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.store_search", "--quick", "--items", "300"]
    command += ["--queries", "4", "--ingest-texts", "8", "--out", str(tmp_path)]
    result = subprocess.run(
        command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "store_search-quick.json").read_text())
    assert (report["items"], report["dim"], report["queries"]) == (300, 512, 4)
    lancedb, milvus = report["runs"]
    assert (lancedb["store"], milvus["store"]) == ("lancedb", "milvus")
    assert lancedb["exact"]["recall_at_10"] == 1.0  # the scan is exact: the truth lines up
    for run in report["runs"]:
        assert run["ingest_items_per_s"] > 0 and run["index_build_s"] >= 0
        assert 0.0 <= run["search"]["recall_at_10"] <= 1.0
        assert 0 < run["search"]["p50_ms"] <= run["search"]["p99_ms"]
    assert lancedb["index"].startswith("IVF_PQ (cosine, 1 partitions, 64 sub-vectors; nprobes 20")
    assert milvus["index"] == "HNSW (M 16, efConstruction 200; ef 100)"
    assert [row["nprobes"] for row in lancedb["sweep"]] == [5, 20, 5, 10, 20, 10]
    assert [(i["store"], i["inserted"]) for i in report["ingest"]] == [
        ("lancedb", 8),
        ("milvus", 8),
    ]
    markdown = (tmp_path / "store_search-quick.md").read_text()
    assert "| Milvus Lite | HNSW (M 16, efConstruction 200; ef 100) |" in markdown
    assert "| LanceDB | none (exact scan, 4 queries) |" in markdown


def test_the_documented_commands_parse() -> None:
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    commands = re.findall(r"python -m benchmarks\.store_search([^`\n]*)", readme)
    assert len(commands) >= 2
    parsed = [store_search.parse_args(shlex.split(flags, comments=True)) for flags in commands]
    full = next(args for args in parsed if not args.quick)
    assert (full.items, full.dim, full.queries, full.stores) == (
        100_000,
        512,
        200,
        ["lancedb", "milvus"],
    )
