"""Latency/throughput summaries shared by the load generator and the in-process runners."""

from __future__ import annotations

from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = (len(sorted_values) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarise(
    latencies_s: list[float], *, wall_s: float, items_per_call: int = 1, errors: int = 0
) -> dict[str, Any]:
    """Throughput (items/s) and latency percentiles (ms) of one measured point."""
    ordered = sorted(latencies_s)
    calls = len(ordered)
    return {
        "calls": calls,
        "items": calls * items_per_call,
        "errors": errors,
        "wall_s": round(wall_s, 3),
        "throughput": round(calls * items_per_call / wall_s, 3) if wall_s > 0 else 0.0,
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p95_ms": round(percentile(ordered, 95) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        "mean_ms": round(sum(ordered) / calls * 1000, 3) if calls else 0.0,
    }
