"""Helpers shared by the serve-tier tests (imported by name: tests/serve is on sys.path)."""

from __future__ import annotations

import base64
import io
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a test Ray needs no token

ROOT = Path(__file__).resolve().parents[2]
RAY_INIT: dict[str, Any] = {
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 256 * 1024 * 1024,
}


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


def wait_ready(url: str, *, timeout_s: float = 240.0, process: Any = None) -> dict[str, Any]:
    """Poll /v1/health until every deployment is ready (fails early if ``process`` exits)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before it was ready")
        try:
            last = httpx.get(f"{url}/v1/health", timeout=5).json()
            if last.get("ready"):
                return dict(last)
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
        time.sleep(1.0)
    pytest.fail(f"{url} not ready after {timeout_s:.0f}s; last health: {last}")


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
