"""`mmserve serve` stops on SIGTERM and leaves nothing it started behind. It stops the app the
serve modules share (shared_app.py), so the conftest runs it after every other user."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from serve_support import descendants
from shared_app import TinyApp

pytestmark = [pytest.mark.serve, pytest.mark.stops_shared_app]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_everything_it_started(keyed_tiny_app: TinyApp) -> None:
    process = keyed_tiny_app.process
    started = descendants(process.pid)
    assert started, "the server should run Ray's processes as its descendants"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(1)
    assert not [pid for pid in started if _alive(pid)]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{keyed_tiny_app.url}/v1/health", timeout=5)
