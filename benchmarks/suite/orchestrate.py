"""Runs one preset's systems one after another and collects their measured points.

In-process systems (bare loop, local mode) run in a child process that reports JSON; HTTP
systems run as child servers driven by the async load generator, while a sampler watches
the server's process tree (CPU, memory) and another the load generator itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.suite.loadgen import run_load
from benchmarks.suite.presets import Inputs, Preset, ServeShape, make_inputs
from benchmarks.suite.procstats import TreeSampler, tree_pss_mb, tree_rss_mb, tree_size
from benchmarks.suite.servers import (
    PYTHON,
    REPO_ROOT,
    ServerProcess,
    child_env,
    mmserve_server,
    peer_server,
)
from mmserve.serve.plan import GRPC_PROXY_ENV, HAPROXY_ENV

#: ``mmserve-ingress``: mmserve with the model in the ingress (``placement: ingress``).
HTTP_SYSTEMS = ("mmserve", "mmserve-ingress", "mmserve-nobatch", "fastapi", "litserve", "ray")
#: Opt-in (``--systems``): mmserve over Ray actor calls (``server.transport: actor``) and the
#: hand-written Ray app with Serve's proxy on gRPC, as mmserve's default transport sets it;
#: ``*-haproxy``: the same behind Serve's HAProxy ingress (``server.proxy: haproxy``; for the
#: hand-written app ``RAY_SERVE_ENABLE_HA_PROXY=1``), which replaces the Python proxy.
EXTRA_SYSTEMS = (
    "mmserve-actor",
    "ray-grpc",
    "mmserve-haproxy",
    "mmserve-ingress-haproxy",
    "ray-haproxy",
)
IN_PROCESS = {
    "bare": "benchmarks.suite.inprocess",
    "local": "benchmarks.suite.inprocess",
    "api": "benchmarks.suite.api_inprocess",
}
DEFAULT_SYSTEMS = (*IN_PROCESS, *HTTP_SYSTEMS)
ALL_SYSTEMS = (*DEFAULT_SYSTEMS, *EXTRA_SYSTEMS)


@dataclass(frozen=True)
class Plan:
    """How long and at which concurrencies to measure."""

    duration_s: float
    warmup_s: float
    concurrency: tuple[int, ...]
    systems: tuple[str, ...]
    shape: ServeShape
    text_words: int
    workdir: Path
    base_port: int = 8100
    max_requests: int = 1_000_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _inprocess(
    preset: Preset, mode: str, plan: Plan, concurrency: tuple[int, ...]
) -> dict[str, Any]:
    argv = [
        PYTHON,
        "-m",
        IN_PROCESS[mode],
        "--preset",
        preset.name,
        "--mode",
        mode,
        "--duration",
        str(plan.duration_s),
        "--warmup",
        str(plan.warmup_s),
        "--max-batch",
        str(plan.shape.max_batch),
        "--device",
        plan.shape.device,
        "--dtype",
        plan.shape.dtype,
        "--text-words",
        str(plan.text_words),
        "--concurrency",
        ",".join(str(c) for c in concurrency),
    ]
    done = subprocess.run(
        argv, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed: {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _variants(preset: Preset, system: str) -> tuple[str, ...]:
    # Only mmserve runs workflows; the peers serve the model of the main workflow.
    return preset.workflows if system.startswith("mmserve") else preset.workflows[:1]


#: The mmserve systems: ``mmserve_server`` options on top of the preset's app config.
_MMSERVE_OPTIONS: dict[str, dict[str, str]] = {
    "mmserve": {},
    "mmserve-nobatch": {},
    "mmserve-ingress": {"placement": "ingress"},
    "mmserve-actor": {"transport": "actor"},
    "mmserve-haproxy": {"proxy": "haproxy"},
    "mmserve-ingress-haproxy": {"placement": "ingress", "proxy": "haproxy"},
}
#: The hand-written Ray Serve app with the front door mmserve's own option sets.
_RAY_ENV = {"ray-grpc": {GRPC_PROXY_ENV: "1"}, "ray-haproxy": {HAPROXY_ENV: "1"}}


def _server(system: str, preset: Preset, inputs: Inputs, plan: Plan, port: int) -> ServerProcess:
    if system in _MMSERVE_OPTIONS:
        shape = plan.shape.unbatched() if system == "mmserve-nobatch" else plan.shape
        return mmserve_server(
            preset, shape, inputs, system=system, port=port, workdir=plan.workdir,
            **_MMSERVE_OPTIONS[system],
        )  # fmt: skip
    if system in _RAY_ENV:
        return peer_server(
            "ray", preset, plan.shape, inputs, port=port, workdir=plan.workdir, system=system,
            env=_RAY_ENV[system],
        )  # fmt: skip
    return peer_server(system, preset, plan.shape, inputs, port=port, workdir=plan.workdir)


def _http_system(
    system: str, preset: Preset, inputs: Inputs, plan: Plan, port: int, concurrency: tuple[int, ...]
) -> dict[str, Any]:
    server = _server(system, preset, inputs, plan, port)
    log(f"  starting {system} ({' '.join(server.argv[-8:])})")
    try:
        server.start()
        time.sleep(2.0)  # let start-up work (Ray's prestarted workers) settle
        server.remember_tree()
        out: dict[str, Any] = {
            "startup_s": round(server.startup_s, 1),
            "processes": tree_size(server.pid),
            "idle_rss_mb": round(tree_rss_mb(server.pid), 1),
            "idle_pss_mb": round(tree_pss_mb(server.pid), 1),
            "points": [],
        }
        for variant in _variants(preset, system):
            for level in concurrency:
                server_stats = TreeSampler(server.pid).start()
                client_stats = TreeSampler(os.getpid(), children=False).start()
                point = asyncio.run(
                    run_load(
                        server.target(variant),
                        server.body_for,
                        concurrency=level,
                        duration_s=plan.duration_s,
                        warmup_s=plan.warmup_s,
                        max_requests=plan.max_requests,
                    )
                )
                point.update(server_stats.stop().as_dict())
                point["loadgen_cpu_cores"] = round(client_stats.stop().cpu_cores, 3)
                point.update(system=system, variant=variant)
                out["points"].append(point)
                log(
                    f"    {system} {variant} c={level}: {point['throughput']:.1f}/s "
                    f"p50 {point['p50_ms']:.1f} ms p95 {point['p95_ms']:.1f} ms "
                    f"batch {point.get('mean_batch', '-')} errors {point['errors']}"
                )
        out["rss_after_mb"] = round(tree_rss_mb(server.pid), 1)
        return out
    finally:
        server.stop()


def run_preset(
    preset: Preset,
    plan: Plan,
    results: dict[str, Any],
    *,
    concurrency_for: dict[str, tuple[int, ...]],
    after_each: Callable[[], None] = lambda: None,
) -> None:
    """Every planned system on ``preset`` into ``results``: ``{system: {startup_s, idle_*,
    points: [...]}}``; ``after_each`` runs after each system (to save partial results)."""
    inputs = make_inputs(preset, text_words=plan.text_words)
    port = plan.base_port
    for system in plan.systems:
        levels = concurrency_for.get(system, plan.concurrency)
        if not levels:
            continue
        log(f"{preset.name}: {system}")
        try:
            if system in IN_PROCESS:
                results[system] = _inprocess(preset, system, plan, levels)
                for point in results[system]["points"]:
                    log(
                        f"    {point['system']} {point['variant']}: {point['throughput']:.1f}/s "
                        f"p50 {point['p50_ms']:.2f} ms"
                    )
            else:
                port += 1
                results[system] = _http_system(system, preset, inputs, plan, port, levels)
        except Exception as exc:  # one failing system must not lose the others' results
            log(f"  {system} FAILED: {exc}")
            results[system] = {"error": str(exc)[-2000:], "points": []}
        after_each()
