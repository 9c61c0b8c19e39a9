"""A client timeout is reported as a timeout, not as "cannot reach mmserve" (issue 17): a real
local HTTP server that lists its workflow at once and holds the run until the test ends."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmserve import ApiTimeoutError, AsyncClient, Client, ClientTimeoutError, RetryPolicy

pytestmark = pytest.mark.unit

LISTING = {
    "workflows": [
        {
            "name": "slow",
            "inputs": {"type": "object", "properties": {"text": {"type": "string"}}},
            "outputs": {"type": "object", "properties": {}},
            "repeatable": True,
            "side_effects": [],
        }
    ]
}


@pytest.fixture
def url() -> Iterator[str]:
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(json.dumps(LISTING))

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            release.wait(30)  # the run takes longer than the client waits
            self._send(json.dumps({"outputs": {}, "trace": []}))

        def _send(self, body: str) -> None:
            data = body.encode()
            try:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up and closed the connection
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


def test_the_client_reports_a_timeout_as_a_timeout(url: str) -> None:
    with Client(url, timeout=0.5, retry=RetryPolicy(attempts=3, backoff_s=0.0)) as client:
        with pytest.raises(ClientTimeoutError) as info:
            client.run("slow", text="hi")
    assert isinstance(info.value, ApiTimeoutError)  # `except ApiTimeoutError` catches it
    assert "did not answer within 0.5 s" in str(info.value)
    assert "cannot reach" not in str(info.value)
    assert "Client(timeout=...)" in str(info.value)


def test_the_async_client_reports_a_timeout_as_a_timeout(url: str) -> None:
    async def main() -> None:
        async with AsyncClient(url, timeout=0.5) as client:
            await client.run("slow", text="hi")

    with pytest.raises(ClientTimeoutError):
        asyncio.run(main())


def test_a_streamed_run_reports_a_timeout_as_a_timeout(url: str) -> None:
    with Client(url, timeout=0.5) as client, pytest.raises(ClientTimeoutError):
        list(client.stream("slow", text="hi"))


def test_mmserve_run_timeout_says_the_server_did_not_answer_in_time(url: str) -> None:
    args = ["run", "slow", "--url", url, "--timeout", "0.5", "--input", "text=hi"]
    result = subprocess.run(
        [sys.executable, "-m", "mmserve", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "did not answer within 0.5 s" in line
    assert "cannot reach" not in line and "mmserve run --timeout" in line
