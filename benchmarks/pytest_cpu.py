"""Where the suite's CPU goes: a pytest plugin that writes, for every test, the machine's busy
CPU seconds (all processes, from /proc/stat: Ray's workers and subprocesses included), the
wall seconds and the test process's own CPU (with its waited-for children), setup and
teardown included, one JSON line per test.

Meaningful only in a serial run on an otherwise quiet machine (Linux):

    PYTEST_CPU_OUT=/tmp/cpu.jsonl .venv/bin/python -m pytest -p benchmarks.pytest_cpu \\
        -p no:xdist tests/unit tests/integration tests/serve
    .venv/bin/python -m benchmarks.pytest_cpu /tmp/cpu.jsonl     # the modules, costliest first
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

_TICK = os.sysconf("SC_CLK_TCK")
_OUT = Path(os.environ.get("PYTEST_CPU_OUT", "pytest-cpu.jsonl"))


def _busy_s() -> float:
    """Seconds of CPU the whole machine spent busy since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK  # less idle and iowait


def _own_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    busy, wall, own = _busy_s(), time.monotonic(), _own_s()
    yield
    row = {
        "id": item.nodeid,
        "cpu": round(_busy_s() - busy, 2),
        "wall": round(time.monotonic() - wall, 2),
        "own": round(_own_s() - own, 2),
    }
    with _OUT.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def by_module(path: Path) -> list[tuple[str, float, float, int]]:
    """(module, CPU s, wall s, tests) from a file the plugin wrote, costliest first."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        total = totals[row["id"].split("::", 1)[0]]
        total[0] += row["cpu"]
        total[1] += row["wall"]
        total[2] += 1
    rows = [(module, cpu, wall, int(n)) for module, (cpu, wall, n) in totals.items()]
    return sorted(rows, key=lambda row: -row[1])


def main() -> None:
    rows = by_module(Path(sys.argv[1] if len(sys.argv) > 1 else _OUT))
    print(f"{sum(r[1] for r in rows):.0f} CPU-s, {sum(r[2] for r in rows):.0f} s wall in all")
    for module, cpu, wall, tests in rows:
        print(f"{cpu:8.1f} {wall:8.1f} {tests:5d}  {module}")


if __name__ == "__main__":
    main()
