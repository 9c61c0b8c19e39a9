"""benchmarks/pytest_cpu.py: the suite's per-test CPU, summed by module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.pytest_cpu import by_module

pytestmark = pytest.mark.unit


def test_rows_are_summed_by_module_costliest_first(tmp_path: Path) -> None:
    rows = [
        {"id": "tests/a.py::test_one", "cpu": 1.5, "wall": 2.0, "own": 1.0},
        {"id": "tests/b.py::test_two[x]", "cpu": 4.0, "wall": 3.0, "own": 0.5},
        {"id": "tests/a.py::test_three", "cpu": 0.5, "wall": 1.0, "own": 0.5},
    ]
    path = tmp_path / "cpu.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert by_module(path) == [("tests/b.py", 4.0, 3.0, 1), ("tests/a.py", 2.0, 3.0, 2)]


def test_the_plugin_writes_a_line_per_test_of_a_real_run(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "def test_a():\n    assert sum(range(10)) == 45\n\ndef test_b():\n    pass\n"
    )
    out = tmp_path / "cpu.jsonl"
    root = Path(__file__).resolve().parents[3]
    plugins = ["-p", "benchmarks.pytest_cpu", "-p", "no:xdist", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTEST_CPU_OUT": str(out), "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"].split("::")[1] for row in lines] == ["test_a", "test_b"]
    assert all(row["cpu"] >= 0 and row["wall"] >= 0 and row["own"] >= 0 for row in lines)
