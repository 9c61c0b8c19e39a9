"""The HTTP systems of the suite as child processes: start, wait until ready, stop.

Each server runs in its own session (process group) under the orchestrator, so the suite is
one process tree. ``stop`` sends SIGTERM to the server, then SIGKILL to any process of its
tree (recorded by id beforehand) still alive after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from benchmarks.suite.presets import BENCH_DIR, Inputs, Preset, ServeShape, app_config

REPO_ROOT = BENCH_DIR.parent
PYTHON = sys.executable


def child_env() -> dict[str, str]:
    """The environment of every child: this repository importable (Ray workers included),
    no hub access, no telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # A fresh Ray for every system: without this, ray.init() attaches to any cluster that
    # `ray start` (or a test) left on this machine.
    env["RAY_ADDRESS"] = "local"
    # Ray starts its workers (replicas, proxy) at nice 15; the peers and the load generator
    # run at nice 0. On a shared machine that alone would skew the comparison.
    env.setdefault("RAY_worker_niceness", "0")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ServerProcess:
    """One HTTP system: its command, the URL to POST and the body of request ``i``."""

    system: str
    argv: list[str]
    url: str
    body_for: Callable[[int], dict[str, Any]]
    log_path: Path
    #: The URL for a workflow (mmserve) -- peers serve one model at one URL.
    url_for: Callable[[str], str] | None = None
    ready_timeout_s: float = float(os.environ.get("BENCH_READY_TIMEOUT_S", "300"))
    #: When set, readiness is ``GET health_url`` answering ``{"ready": true}`` (no request).
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    pids: set[int] = field(default_factory=set)
    #: Folders put first on the server's PYTHONPATH (e.g. the proposed-fix overlay).
    pythonpath: list[str] = field(default_factory=list)
    #: Extra environment of the server (and of the Ray it starts).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def target(self, workflow: str) -> str:
        return self.url_for(workflow) if self.url_for is not None else self.url

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        started = time.perf_counter()
        env = child_env()
        env["PYTHONPATH"] = os.pathsep.join([*self.pythonpath, env["PYTHONPATH"]])
        env.update(self.env)
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()
        self.startup_s = time.perf_counter() - started

    def _wait_ready(self) -> None:
        deadline = time.perf_counter() + self.ready_timeout_s
        last = ""
        while time.perf_counter() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.system} exited while starting: {self.log_tail()}")
            try:
                if self.health_url is not None:
                    response = httpx.get(self.health_url, timeout=30)
                    if response.status_code == 200 and response.json().get("ready"):
                        return
                else:
                    response = httpx.post(self.url, json=self.body_for(0), timeout=120)
                    if response.status_code == 200:
                        return
                    if response.status_code in (400, 405, 422):  # a bad request: never ready
                        raise RuntimeError(
                            f"{self.system} rejects the request: HTTP {response.status_code}: "
                            f"{response.text[:300]}"
                        )
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            time.sleep(1.0)
        raise RuntimeError(f"{self.system} not ready after {self.ready_timeout_s}s ({last})")

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def remember_tree(self) -> None:
        """Record the ids of every process of the tree (to kill stragglers by id)."""
        try:
            root = psutil.Process(self.pid)
            self.pids |= {self.pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass

    def stop(self, grace_s: float = 60.0) -> None:
        if self.process is None:
            return
        self.remember_tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace_s)
        for pid in sorted(self.pids):
            try:
                process = psutil.Process(pid)
                process.kill()
            except psutil.NoSuchProcess:
                continue
        self.process.wait(timeout=30)


def _mmserve_command() -> list[str]:
    """``mmserve serve`` when the CLI mounts it, else the same function standalone."""
    mmserve = Path(PYTHON).with_name("mmserve")
    if not mmserve.exists():  # not installed (e.g. src/ on PYTHONPATH)
        return [PYTHON, "-m", "mmserve.cli.serve", "serve"]
    probe = subprocess.run(
        [str(mmserve), "serve", "--help"], capture_output=True, env=child_env(), check=False
    )
    if probe.returncode == 0:
        return [str(mmserve), "serve"]
    return [PYTHON, "-m", "mmserve.cli.serve", "serve"]


def mmserve_server(
    preset: Preset,
    shape: ServeShape,
    inputs: Inputs,
    *,
    system: str,
    port: int,
    workdir: Path,
    transport: str = "grpc",
    placement: str = "deployment",
    proxy: str = "serve",
) -> ServerProcess:
    """``mmserve serve`` on a generated app config for ``preset`` (the model in its own
    deployment, or with ``placement="ingress"`` in the ingress; behind Serve's Python proxy
    or, with ``proxy="haproxy"``, its HAProxy ingress)."""
    config_path = workdir / f"{system}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config = app_config(
        preset, shape, port=port, transport=transport, placement=placement, proxy=proxy
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ServerProcess(
        system=system,
        argv=[*_mmserve_command(), "--config", str(config_path), "--port", str(port)],
        url=f"http://127.0.0.1:{port}/v1/workflows/{preset.workflows[0]}/run",
        url_for=lambda workflow: f"http://127.0.0.1:{port}/v1/workflows/{workflow}/run",
        body_for=inputs.mmserve_body,
        log_path=workdir / f"{system}.log",
    )


def app_server(config_path: Path, *, system: str, port: int, workdir: Path) -> ServerProcess:
    """``mmserve serve`` on an existing app config, ready when ``/v1/health`` says so."""
    return ServerProcess(
        system=system,
        argv=[*_mmserve_command(), "--config", str(config_path), "--port", str(port)],
        url=f"http://127.0.0.1:{port}/v1/health",
        body_for=lambda index: {},
        log_path=workdir / f"{system}.log",
        health_url=f"http://127.0.0.1:{port}/v1/health",
    )


def peer_server(
    peer: str,
    preset: Preset,
    shape: ServeShape,
    inputs: Inputs,
    *,
    port: int,
    workdir: Path,
    system: str | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """A peer server (fastapi, litserve, ray) for ``preset``, reported as ``system`` (default:
    the peer's name), with ``env`` added to its environment."""
    argv = [PYTHON, "-m", f"benchmarks.peers.{peer}_peer", "--preset", preset.name]
    argv += ["--port", str(port), "--device", shape.device]
    if peer in ("litserve", "ray"):
        argv += ["--max-batch", str(shape.max_batch), "--wait-ms", str(shape.wait_ms)]
    if peer == "ray":
        argv += ["--cpus", str(shape.cpus), "--gpus", str(shape.gpus)]
    system = system or peer
    return ServerProcess(
        system=system,
        argv=argv,
        url=f"http://127.0.0.1:{port}/predict",
        body_for=inputs.peer_body,
        log_path=workdir / f"{system}.log",
        env=dict(env or {}),
    )
