"""The benchmark's model-in-the-ingress system (``mmserve-ingress``): its app config and the
arithmetic of issue 14's targets. No model, no Ray, no timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psutil")  # the harness needs the [bench] extra

REPO_ROOT = Path(__file__).resolve().parents[3]

from benchmarks.run import make_plan, parse_args  # noqa: E402
from benchmarks.suite.ingress_targets import ingress_targets  # noqa: E402
from benchmarks.suite.presets import PRESETS, ServeShape, app_config  # noqa: E402

from mmserve.config import AppConfig  # noqa: E402
from mmserve.serve.plan import ingress_options, plan_models  # noqa: E402

pytestmark = pytest.mark.unit


def test_the_ingress_system_runs_by_default_with_the_model_in_the_ingress(tmp_path: Path) -> None:
    assert "mmserve-ingress" in make_plan(parse_args(["--quick"]), tmp_path).systems
    preset = PRESETS["minilm"]
    config = AppConfig.from_dict(
        app_config(preset, ServeShape(max_batch=16, cpus=2), port=8123, placement="ingress")
    )
    assert config.models[preset.role].placement == "ingress"
    assert plan_models(config) == []
    assert ingress_options(config)["ray_actor_options"]["num_cpus"] == 2.5
    default = AppConfig.from_dict(app_config(preset, ServeShape(), port=8123))
    assert default.models[preset.role].placement == "deployment"


def _at(system: str, variant: str, concurrency: int, p50: float, rate: float) -> dict[str, Any]:
    point = {"system": system, "variant": variant, "concurrency": concurrency}
    return {**point, "p50_ms": p50, "p95_ms": 2 * p50, "throughput": rate}


def test_chain_targets_read_added_latency_and_each_extra_step() -> None:
    results = {
        "bare": {"points": [{"batch": 1, "throughput": 1000.0, "p50_ms": 0.5}]},
        "mmserve-ingress": {"points": [_at("mmserve-ingress", "c1", 1, 4.5, 200),
                                       _at("mmserve-ingress", "c2", 1, 5.2, 180),
                                       _at("mmserve-ingress", "c3", 1, 6.4, 150)]},
        "mmserve": {"points": [_at("mmserve", "c1", 1, 11.0, 90)]},
    }  # fmt: skip
    targets = ingress_targets("fake", ("c1", "c2", "c3"), results)
    measured = [(t["measured"], t["met"]) for t in targets]
    assert measured == [
        ("+4.00 ms", True),
        ("+0.70 ms", True),
        ("+1.20 ms", False),
        ("p50 +6.50 ms saved", None),
    ]


def test_throughput_targets_compare_with_fastapi_and_the_best_peer() -> None:
    results = {
        "fastapi": {"points": [_at("fastapi", "w", 1, 40.0, 25), _at("fastapi", "w", 16, 600, 24)]},
        "litserve": {"points": [_at("litserve", "w", 16, 500, 30)]},
        "ray": {"points": [_at("ray", "w", 16, 550, 27)]},
        "mmserve-ingress": {"points": [_at("mmserve-ingress", "w", 1, 46.0, 21),
                                       _at("mmserve-ingress", "w", 16, 480, 29)]},
    }  # fmt: skip
    targets = {t["target"]: t for t in ingress_targets("minilm", ("w",), results)}
    c1 = targets["[minilm] mmserve-ingress c=1 vs plain FastAPI"]
    assert (c1["measured"], c1["met"]) == ("+6.00 ms", False)
    (c16,) = [t for name, t in targets.items() if "best of" in name]
    assert (c16["measured"], c16["met"]) == ("0.97x (LitServe)", False)


def test_the_haproxy_system_is_read_against_the_ray_app_and_mmserve_behind_haproxy() -> None:
    system = "mmserve-ingress-haproxy"
    results = {
        "bare": {"points": [{"batch": 1, "throughput": 1000.0, "p50_ms": 0.5}]},
        system: {"points": [_at(system, "c1", 1, 9.5, 100), _at(system, "c2", 1, 10.0, 95)]},
        "ray-haproxy": {"points": [_at("ray-haproxy", "c1", 1, 7.5, 130)]},
        "mmserve-haproxy": {"points": [_at("mmserve-haproxy", "c1", 1, 15.0, 60)]},
        "mmserve": {"points": [_at("mmserve", "c1", 1, 30.0, 30)]},
    }
    found = ingress_targets("fake", ("c1", "c2"), results, system=system)
    targets = {t["target"]: t for t in found}
    assert targets[f"[fake] {system} added latency, c=1, 1 step"]["measured"] == "+9.00 ms"
    versus_ray = targets[f"[fake] {system} c=1, 1 step vs hand-written Ray Serve, HAProxy"]
    assert versus_ray["measured"] == "+2.00 ms" and versus_ray["met"] is None
    separate = targets[f"[fake] {system} c=1 vs mmserve-haproxy (separate deployment)"]
    assert separate["measured"] == "p50 +5.50 ms saved"
    assert (
        "mmserve-haproxy"
        in make_plan(
            parse_args(["--quick", "--systems", f"bare,{system},mmserve-haproxy,ray-haproxy"]),
            Path("/tmp"),
        ).systems
    )
    config = AppConfig.from_dict(
        app_config(PRESETS["fake"], ServeShape(), port=8123, placement="ingress", proxy="haproxy")
    )
    assert config.server.proxy == "haproxy"
