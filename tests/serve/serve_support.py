"""Helpers shared by the serve-tier tests (imported by name: tests/serve is on sys.path)."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import pytest
import yaml
from PIL import Image

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a test Ray needs no token
# The suite runs two Serve apps and the unit tiers at once on CI's two cores (scripts/check):
# Serve's controller kills a proxy that is not ready within 5 s (its default), and a proxy
# process that starts beside ten replicas importing torch can take longer. Every Ray the
# serve tier starts (in this process, or in a `mmserve serve` child) inherits these.
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "60")
# Serve's controller loops every 0.1 s by default, a twentieth of a core per idle app here
# (measured with psutil over an idle app of the fake models: 0.19 of a core in all, 0.11 with
# 0.5 s); two apps stay up for most of a run on two cores. Deploys take a few loops longer.
os.environ.setdefault("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", "0.5")

ROOT = Path(__file__).resolve().parents[2]
#: `mmserve serve`, the console script of the environment running the tests.
MMSERVE_SERVE = [str(Path(sys.executable).with_name("mmserve")), "serve"]
RAY_INIT: dict[str, Any] = {
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 256 * 1024 * 1024,
}


T = TypeVar("T")


class SharedByModules(Generic[T]):
    """Something the serve modules share (a Ray, an app): started by the first module that
    asks for it (:meth:`_acquire`), stopped after the last of :attr:`users` releases it. The
    conftest fills :attr:`users` (the modules of the run using it) at collection. A failed
    start is remembered: later modules fail at once with its reason instead of starting it
    again. Subclasses say what they are (:attr:`what`) and how to stop (:meth:`_stop`), which
    must also undo a start that failed half-way."""

    what = "the shared thing"

    def __init__(self) -> None:
        self.users: set[str] = set()
        self._value: T | None = None
        self._failed: str | None = None

    def _acquire(self, start: Callable[[], T]) -> T:
        if self._failed is not None:
            pytest.fail(f"{self.what} did not start: {self._failed}")
        if self._value is None:
            try:
                self._value = start()
            except BaseException as exc:
                self._stop()
                self._failed = f"{type(exc).__name__}: {exc}"
                raise
        return self._value

    def release(self, user: str) -> None:
        """``user`` (a module) is done; it stops when no module of the run is left."""
        self.users.discard(user)
        if not self.users:
            self.close()

    def close(self) -> None:
        """Stop it whatever is left (the end of the session: a user module whose tests were
        all skipped never releases it)."""
        self.users.clear()
        self._value = None
        self._stop()

    def _stop(self) -> None:
        raise NotImplementedError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png_base64(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_config(folder: Path, data: dict[str, Any], name: str = "app.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def wait_ready(
    url: str,
    *,
    timeout_s: float = 240.0,
    process: Any = None,
    ready_log: list[httpx.Response] | None = None,
    on_not_ready: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Poll /v1/health until every deployment is ready (fails early if ``process`` exits);
    with ``ready_log``, /v1/ready's answers on the way are appended to it (the proxy's
    answers before the app exists included; refused connections are not answers), and
    ``on_not_ready`` is called at each of mmserve's own 503 ``not_ready`` answers."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before it was ready")
        if ready_log is not None:
            with suppress(httpx.HTTPError):
                ready_log.append(httpx.get(f"{url}/v1/ready", timeout=5))
                if on_not_ready is not None and _not_ready(ready_log[-1]):
                    on_not_ready()
        try:
            last = httpx.get(f"{url}/v1/health", timeout=5).json()
            if last.get("ready"):
                return dict(last)
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
        time.sleep(1.0)
    pytest.fail(f"{url} not ready after {timeout_s:.0f}s; last health: {last}")


def _not_ready(answer: httpx.Response) -> bool:
    """mmserve's own 503 (its ingress runs, a model does not yet), not Serve's proxy's."""
    return answer.status_code == 503 and answer.headers.get("content-type") == "application/json"


@contextmanager
def serving(
    config_path: Path,
    *,
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
    ready_log: list[httpx.Response] | None = None,
    on_not_ready: Callable[[], None] | None = None,
    ready_timeout_s: float = 420,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`mmserve serve` on ``config_path`` as a child process, ready; then SIGTERM, and SIGKILL
    of its process group if it has not stopped within 90 s. Yields the process and its URL.
    ``ready_log``, ``on_not_ready``: see :func:`wait_ready`; ``ready_timeout_s``: how long it
    may take to start."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*MMSERVE_SERVE, "--config", str(config_path), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own group, so teardown stops exactly what it started
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(
                url,
                timeout_s=ready_timeout_s,
                process=process,
                ready_log=ready_log,
                on_not_ready=on_not_ready,
            )
            yield process, url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def assert_close(actual: Any, expected: Any, *, where: str = "") -> None:
    """Equal JSON values, floats compared with a tolerance (batched vs unbatched float math)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), where
        for key in expected:
            assert_close(actual[key], expected[key], where=f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, where=f"{where}[{n}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-4, abs=1e-5), where
    else:
        assert actual == expected, where
