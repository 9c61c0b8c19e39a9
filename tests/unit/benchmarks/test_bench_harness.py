"""The benchmark harness (benchmarks/): its command line, configs and result arithmetic.

No model, no Ray, no timing: the suite itself is run by hand (see benchmarks/README.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The harness needs the [bench] extra (psutil); without it there is nothing to check here.
pytest.importorskip("psutil")

REPO_ROOT = Path(__file__).resolve().parents[3]

from benchmarks.run import make_plan, parse_args  # noqa: E402
from benchmarks.suite import report  # noqa: E402
from benchmarks.suite.presets import PRESETS, ServeShape, app_config, make_inputs  # noqa: E402
from benchmarks.suite.stats import percentile, summarise  # noqa: E402

from mmserve.config import AppConfig  # noqa: E402

pytestmark = pytest.mark.unit


def test_help_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


def test_quick_plan_is_short(tmp_path: Path) -> None:
    plan = make_plan(parse_args(["--quick"]), tmp_path)
    assert plan.concurrency == (1, 16)
    assert plan.duration_s < make_plan(parse_args([]), tmp_path).duration_s


def test_unknown_system_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown systems"):
        make_plan(parse_args(["--systems", "bare,nginx"]), tmp_path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_makes_a_valid_app_config(name: str) -> None:
    preset = PRESETS[name]
    batched = AppConfig.from_dict(app_config(preset, ServeShape(max_batch=16), port=8123))
    off = AppConfig.from_dict(app_config(preset, ServeShape(max_batch=16).unbatched(), port=1))
    model = batched.models[preset.role]
    assert (model.backend, model.source, model.batch.max_size) == (
        preset.backend,
        preset.source,
        16,
    )
    assert off.models[preset.role].batch.max_size == 1
    assert all(path.exists() for path in batched.workflow_paths())


def test_inputs_are_deterministic_and_sized() -> None:
    texts = make_inputs(PRESETS["minilm"], count=4, text_words=50)
    assert texts.raw == make_inputs(PRESETS["minilm"], count=4, text_words=50).raw
    assert all(len(text.split()) == 50 for text in texts.raw)
    assert texts.mmserve_body(5) == {"inputs": {"text": texts.raw[1]}}
    images = make_inputs(PRESETS["fake"], count=2)
    assert images.peer_body(0)["image"] != images.peer_body(1)["image"]


def test_percentiles_interpolate() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 50) == 0.0
    point = summarise([0.010, 0.020, 0.030], wall_s=1.5, items_per_call=2)
    assert (point["items"], point["throughput"], point["p50_ms"]) == (6, 4.0, 20.0)


def _point(system: str, throughput: float, p95: float, *, concurrency: int = 16) -> dict[str, Any]:
    return {
        "system": system,
        "variant": "wf",
        "concurrency": concurrency,
        "throughput": throughput,
        "p50_ms": p95 / 2,
        "p95_ms": p95,
    }


def test_throughput_targets_compare_against_each_peer() -> None:
    results = {
        "bare": {"points": [{"batch": 1, "throughput": 20.0, "p50_ms": 50.0, "p95_ms": 60.0},
                            {"batch": 16, "throughput": 40.0, "p50_ms": 400.0, "p95_ms": 420.0}]},
        "mmserve": {"points": [_point("mmserve", 36.0, 500.0)]},
        "ray": {"points": [_point("ray", 38.0, 480.0)]},
        "mmserve-nobatch": {"points": [_point("mmserve-nobatch", 20.0, 900.0)]},
        "fastapi": {"points": [_point("fastapi", 20.0, 800.0)]},
        "litserve": {"points": [_point("litserve", 37.0, 450.0)]},
    }  # fmt: skip
    targets = {t["target"]: t for t in report.throughput_targets("p", "wf", results)}
    met = {name.split(" vs ")[-1]: t["met"] for name, t in targets.items()}
    assert met == {
        "bare batched loop": True,  # 0.90x
        "hand-written Ray Serve": True,  # 0.95x
        "batching off": True,  # 1.8x at a lower p95
        "plain FastAPI": False,  # 1.8x < 2x
        "LitServe": False,  # fewer items/s
    }


def test_overhead_targets_measure_each_extra_step() -> None:
    results = {
        "bare": {"points": [{"batch": 1, "throughput": 1000.0, "p50_ms": 1.0}]},
        "mmserve": {
            "points": [
                {**_point("mmserve", 100.0, 9.0, concurrency=1), "variant": "one", "p50_ms": 4.0},
                {**_point("mmserve", 80.0, 12.0, concurrency=1), "variant": "two", "p50_ms": 8.5},
            ]
        },
    }
    targets = report.overhead_targets("fake", ("one", "two"), results)
    assert [(t["measured"], t["met"]) for t in targets] == [("+3.00 ms", True), ("+4.50 ms", False)]
