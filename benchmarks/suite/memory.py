"""Memory: idle footprint of whole apps, and a soak run that shows whether anything grows.

* ``idle_app``: ``mmserve serve`` on an app config; once ``/v1/health`` says ready (and a
  settling pause), the RSS and PSS of its whole process tree (Ray daemons, controller,
  proxy, ingress, store and model replicas).
* ``soak``: the served throughput preset at a fixed concurrency for a long time; RSS of the
  tree sampled at intervals, with throughput and latency per interval.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.suite.loadgen import run_load
from benchmarks.suite.orchestrate import Plan, log
from benchmarks.suite.presets import Preset, make_inputs
from benchmarks.suite.procstats import (
    TreeSampler,
    tree_breakdown_mb,
    tree_pss_mb,
    tree_rss_mb,
    tree_size,
)
from benchmarks.suite.servers import REPO_ROOT, app_server, mmserve_server

#: Every role on a full-size random:// model (the hub checkpoints' shapes).
RANDOM_APP: dict[str, Any] = {
    "models": {
        "image_encoder": {"backend": "clip", "source": "random://clip-vit-b32"},
        "text_encoder": {"backend": "clip", "source": "random://clip-vit-b32"},
        "captioner": {"backend": "blip-caption", "source": "random://blip-base"},
        "vqa": {"backend": "blip-vqa", "source": "random://blip-vqa-base"},
    },
    "store": {"kind": "memory"},
    "workflows": [str(REPO_ROOT / "workflows")],
}


def random_app_config(workdir: Path) -> Path:
    path = workdir / "random-app.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(RANDOM_APP, sort_keys=False), encoding="utf-8")
    return path


def _one_request_per_role(port: int) -> bool:
    """Run ``describe`` (captioner + vqa) and ``classify`` (both encoders) once each."""
    image = base64.b64encode((REPO_ROOT / "examples" / "images" / "red_circle.png").read_bytes())
    inputs = {"image": image.decode("ascii")}
    ok = True
    for workflow in ("describe", "classify"):
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/workflows/{workflow}/run",
            json={"inputs": inputs},
            timeout=600,
        )
        ok = ok and response.status_code == 200
    return ok


def idle_app(
    name: str, config: Path, *, port: int, workdir: Path, settle_s: float = 10.0
) -> dict[str, Any]:
    """Start the app, wait until ready and settled, measure, stop."""
    server = app_server(config, system=name, port=port, workdir=workdir)
    log(f"memory: idle {name} ({config})")
    try:
        server.start()
        time.sleep(settle_s)
        sampler = TreeSampler(server.pid).start()
        time.sleep(5.0)
        stats = sampler.stop()
        result = {
            "config": str(config),
            "startup_s": round(server.startup_s, 1),
            "processes": tree_size(server.pid),
            "idle_rss_mb": round(tree_rss_mb(server.pid), 1),
            "idle_pss_mb": round(tree_pss_mb(server.pid), 1),
            "idle_cpu_cores": round(stats.cpu_cores, 3),
            "idle_rss_by_process_mb": tree_breakdown_mb(server.pid),
        }
        # Weights are memory-mapped: pages a model has not yet read are not resident. One
        # request through every role shows the memory of a model that has served.
        result["warm_requests_ok"] = _one_request_per_role(port)
        time.sleep(3.0)
        result["warm_rss_mb"] = round(tree_rss_mb(server.pid), 1)
        result["warm_pss_mb"] = round(tree_pss_mb(server.pid), 1)
        log(f"  {name}: {result}")
        return result
    except Exception as exc:
        log(f"  {name} FAILED: {exc}")
        return {"config": str(config), "error": str(exc)[-1500:]}
    finally:
        server.stop()


def soak(
    preset: Preset, plan: Plan, *, seconds: float, concurrency: int, interval_s: float = 60.0
) -> dict[str, Any]:
    """The served preset under constant load for ``seconds``; RSS per interval."""
    inputs = make_inputs(preset, text_words=plan.text_words)
    server = mmserve_server(
        preset, plan.shape, inputs, system="mmserve-soak", port=plan.base_port, workdir=plan.workdir
    )
    log(f"soak: {preset.name} c={concurrency} for {seconds:.0f} s")
    timeline = []
    try:
        server.start()
        time.sleep(2.0)
        start_rss = tree_rss_mb(server.pid)
        warm_breakdown: dict[str, float] = {}
        start_pss = tree_pss_mb(server.pid)
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            sampler = TreeSampler(server.pid).start()
            point = asyncio.run(
                run_load(
                    server.target(preset.workflows[0]),
                    server.body_for,
                    concurrency=concurrency,
                    duration_s=min(interval_s, seconds - (time.perf_counter() - began)),
                    warmup_s=0.0,
                )
            )
            point.update(sampler.stop().as_dict())
            point["t_s"] = round(time.perf_counter() - began, 1)
            timeline.append(point)
            if not warm_breakdown:  # after the first interval: warmed up
                warm_breakdown = tree_breakdown_mb(server.pid)
            log(
                f"  t={point['t_s']:.0f}s {point['throughput']:.1f}/s p95 {point['p95_ms']:.0f} ms "
                f"rss {point['rss_end_mb']:.0f} MB errors {point['errors']}"
            )
        end_rss = tree_rss_mb(server.pid)
        end_breakdown = tree_breakdown_mb(server.pid)
        end_pss = tree_pss_mb(server.pid)
        return {
            "preset": preset.name,
            "concurrency": concurrency,
            "seconds": seconds,
            "rss_start_mb": round(start_rss, 1),
            "rss_end_mb": round(end_rss, 1),
            "pss_start_mb": round(start_pss, 1),
            "pss_end_mb": round(end_pss, 1),
            "requests": sum(p["calls"] for p in timeline),
            "errors": sum(p["errors"] for p in timeline),
            "timeline": timeline,
            "rss_by_process_after_first_interval_mb": warm_breakdown,
            "rss_by_process_end_mb": end_breakdown,
        }
    except Exception as exc:
        log(f"  soak FAILED: {exc}")
        return {"preset": preset.name, "error": str(exc)[-1500:], "timeline": timeline}
    finally:
        server.stop()


def memory_markdown(document: dict[str, Any]) -> str:
    lines = [
        "## Memory",
        "",
        "Idle: after start-up and a 10 s pause. Warm: after one request through every role "
        "(`describe` and `classify`); weights are memory-mapped, so pages a model has not yet "
        "read are not resident before.",
        "",
        "| app | start-up s | processes | idle RSS MB | idle PSS MB | idle CPU cores "
        "| warm RSS MB | warm PSS MB | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in document.get("idle", {}).items():
        lines.append(
            f"| {name} | {result.get('startup_s', '-')} | {result.get('processes', '-')} | "
            f"{result.get('idle_rss_mb', '-')} | {result.get('idle_pss_mb', '-')} | "
            f"{result.get('idle_cpu_cores', '-')} | {result.get('warm_rss_mb', '-')} | "
            f"{result.get('warm_pss_mb', '-')} | {result.get('error', '')[:200]} |"
        )
    soak_result = document.get("soak")
    if soak_result:
        lines += [
            "",
            "Soak ({preset}, concurrency {concurrency}, {seconds:.0f} s): tree RSS "
            "{rss_start_mb} MB at start, {rss_end_mb} MB at end; PSS {pss_start_mb} -> "
            "{pss_end_mb} MB; {requests} requests, {errors} errors.".format_map(
                {"seconds": 0.0, **soak_result}
            ),
            "",
            "| t s | items/s | p50 ms | p95 ms | tree RSS MB at end of interval | errors |",
            "|---|---|---|---|---|---|",
        ]
        for p in soak_result.get("timeline", []):
            lines.append(
                f"| {p['t_s']} | {p['throughput']:.1f} | {p['p50_ms']:.0f} | "
                f"{p['p95_ms']:.0f} | {p['rss_end_mb']:.0f} | {p['errors']} |"
            )
        start = soak_result.get("rss_by_process_after_first_interval_mb", {})
        end = soak_result.get("rss_by_process_end_mb", {})
        if start and end:
            lines += [
                "",
                "| process | RSS MB after the first interval | at end | change |",
                "|---|---|---|---|",
            ]
            for name in sorted(set(start) | set(end), key=lambda n: -end.get(n, 0.0)):
                a, b = start.get(name, 0.0), end.get(name, 0.0)
                lines.append(f"| {name} | {a:.0f} | {b:.0f} | {b - a:+.0f} |")
    return "\n".join(lines)
