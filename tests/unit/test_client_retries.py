"""Which answers the client repeats a request on, against a real local HTTP server.

The server answers like the two sources of a 503 with Retry-After in production: Ray Serve's
proxy refusing a request when the ingress queue is full (plain text, the app never saw it:
safe to repeat) and mmserve itself reporting overload mid-run (its JSON error shape: earlier
steps may have committed, so a POST must not be sent again).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmserve import AsyncClient, Client, RetryPolicy
from mmserve.errors import ApiOverloadedError

pytestmark = pytest.mark.unit

FAST = RetryPolicy(attempts=3, backoff_s=0.0)
PROXY_BACKPRESSURE = (
    "Request dropped due to backpressure (num_queued_requests=4, max_queued_requests=4)."
)
MMSERVE_OVERLOADED = {
    "error": {"code": "overloaded", "message": "model 'vqa' is overloaded", "request_id": "r1"}
}


class Script:
    """The answers of the server, in order (the last one repeats), and the requests seen."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str, str]] = []
        self.seen: list[tuple[str, str]] = []


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self.script_seen()
            if self.path == "/v1/workflows":
                self._send(200, "application/json", json.dumps({"workflows": []}))
                return
            runs = [s for s in script.seen if s[1] != "/v1/workflows"]
            status, kind, body = script.answers[min(len(runs), len(script.answers)) - 1]
            self._send(status, kind, body)

        def script_seen(self) -> None:
            script.seen.append((self.command, self.path))

        def _send(self, status: int, kind: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            if status == 503:
                self.send_header("retry-after", "0")
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


OK = (200, "application/json", json.dumps({"outputs": {"answer": "red"}, "trace": []}))
PROXY_503 = (503, "text/plain; charset=utf-8", PROXY_BACKPRESSURE)
APP_503 = (503, "application/json", json.dumps(MMSERVE_OVERLOADED))


def _runs(script: Script) -> list[tuple[str, str]]:
    return [s for s in script.seen if s[0] == "POST"]


def test_the_proxys_backpressure_503_is_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [PROXY_503, PROXY_503, OK]
    with Client(url, retry=FAST) as client:
        assert client.run("answer", question="colour?").outputs == {"answer": "red"}
    assert len(_runs(script)) == 3


def test_mmserves_own_503_to_a_post_is_not_repeated(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [APP_503, OK]
    with Client(url, retry=FAST) as client, pytest.raises(ApiOverloadedError) as caught:
        client.run("answer", question="colour?")
    assert caught.value.code == "overloaded" and caught.value.request_id == "r1"
    assert len(_runs(script)) == 1


def test_the_async_client_follows_the_same_rule(server: tuple[str, Script]) -> None:
    url, script = server

    async def main() -> None:
        async with AsyncClient(url, retry=FAST) as client:
            script.answers = [APP_503, OK]
            with pytest.raises(ApiOverloadedError):
                await client.run("answer", question="colour?")
            assert len(_runs(script)) == 1
            script.answers = [APP_503, PROXY_503, OK]  # the 2nd and 3rd answers: retried
            result = await client.run("answer", question="colour?")
            assert result.outputs == {"answer": "red"}
            assert len(_runs(script)) == 3

    asyncio.run(main())


def test_a_read_is_retried_on_any_503_with_retry_after(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [APP_503, APP_503, (200, "application/json", '{"collections": []}')]
    with Client(url, retry=FAST) as client:
        assert client.collections.list() == []
    assert [s for s in script.seen if s[0] == "GET"] == [("GET", "/v1/collections")] * 3


STREAMED = (
    200,
    "text/event-stream",
    'event: step_started\ndata: {"type":"step_started","step":"a","uses":"answer"}\n\n'
    ": keep-alive\n\n"
    'event: result\ndata: {"outputs":{"answer":"red"},"trace":[],"request_id":"r2"}\n\n',
)


def test_a_stream_follows_the_same_rule(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [PROXY_503, STREAMED]
    with Client(url, retry=FAST) as client:
        started, result = list(client.stream("answer", question="colour?"))
        assert (started.type, started.step) == ("step_started", "a")  # type: ignore[union-attr]
        assert result.outputs == {"answer": "red"} and result.request_id == "r2"  # type: ignore[union-attr]
        assert len(_runs(script)) == 2
        script.seen.clear()
        script.answers = [APP_503, STREAMED]
        with pytest.raises(ApiOverloadedError) as caught:
            list(client.stream("answer", question="colour?"))
    assert caught.value.code == "overloaded" and len(_runs(script)) == 1
