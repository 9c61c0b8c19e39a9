"""Which process of a served app uses the CPU under load.

Starts ``mmserve serve`` for a preset, drives it at one concurrency with the suite's load
generator and prints the CPU (cores busy) of every Ray process of the app over the window:
the HTTP proxy, the ingress, the model replica, Serve's controller, GCS and the raylet.

    python -m benchmarks.suite.cpu_split --preset minilm --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import psutil

from benchmarks.suite.loadgen import run_load
from benchmarks.suite.presets import ServeShape, get_preset, make_inputs
from benchmarks.suite.servers import mmserve_server

_ROLES = ("ProxyActor", "ServeReplica:mmserve:ingress", "ServeController", "gcs_server", "raylet")


def _role(process: psutil.Process, model: str) -> str | None:
    try:
        title = " ".join(process.cmdline())
    except psutil.Error:
        return None
    if f"ServeReplica:mmserve:{model}" in title:
        return f"model replica ({model})"
    return next((role for role in _ROLES if role in title), None)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--transport", default="grpc", choices=("grpc", "actor"))
    parser.add_argument("--port", type=int, default=8190)
    args = parser.parse_args()
    preset = get_preset(args.preset)
    inputs = make_inputs(preset)
    server = mmserve_server(
        preset, ServeShape(wait_ms=0.0), inputs, system="cpu-split", port=args.port,
        workdir=Path("benchmarks/results/work/cpu-split"), transport=args.transport,
    )  # fmt: skip
    try:
        server.start()
        root = psutil.Process(server.pid)
        processes = {root.pid: ("mmserve serve (driver)", root)}
        for child in root.children(recursive=True):
            role = _role(child, preset.role)
            if role is not None:
                processes[child.pid] = (role, child)
        before = {pid: _cpu_s(process) for pid, (_, process) in processes.items()}
        started = time.perf_counter()
        point = asyncio.run(
            run_load(
                server.target(preset.workflows[0]),
                server.body_for,
                concurrency=args.concurrency,
                duration_s=args.duration,
                warmup_s=0.0,
            )
        )
        wall = time.perf_counter() - started
        print(
            f"{preset.name} c={args.concurrency} ({args.transport}): {point['throughput']:.1f} "
            f"items/s, p50 {point['p50_ms']:.0f} ms; CPU cores busy per process:"
        )
        for pid, (role, process) in sorted(processes.items(), key=lambda item: item[1][0]):
            print(f"  {role:40s} {(_cpu_s(process) - before[pid]) / wall:.3f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
