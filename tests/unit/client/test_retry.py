"""Which answers the client repeats a request on, against a real local HTTP server.

The server answers like the two sources of a 503 with Retry-After in production: Ray Serve's
proxy refusing a request when the ingress queue is full (plain text, the app never saw it:
safe to repeat) and mmserve itself reporting overload mid-run (its JSON error shape: earlier
steps may have committed, so a POST must not be sent again). And like a restart: a
connection reset mid-request, a proxy's plain 502, nothing listening for a while; a run cut
so is repeated only when the server's listing says the workflow is ``repeatable``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mmserve import AsyncClient, Client, RetryPolicy
from mmserve.client.errors import (
    ApiOverloadedError,
    ApiServerError,
    RequestInterruptedError,
    ServerUnreachableError,
)
from mmserve.client.retry import Attempts, repeat_blocker

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
        #: GET /v1/workflows: "answer" is safe to repeat, "notify" has a side-effect step
        self.listing = [
            {"name": "answer", "inputs": {}, "repeatable": True, "side_effects": []},
            {"name": "notify", "inputs": {}, "repeatable": False, "side_effects": ["send"]},
        ]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self.script_seen()
            if self.path == "/v1/workflows":
                self._send(200, "application/json", json.dumps({"workflows": script.listing}))
                return
            runs = [s for s in script.seen if s[1] != "/v1/workflows"]
            status, kind, body = script.answers[min(len(runs), len(script.answers)) - 1]
            if status == RESET:
                # an abortive close (RST) with no answer: a replica or proxy dying mid-request
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
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


RESET = 0  # not an HTTP status: the server resets the connection instead of answering
OK = (200, "application/json", json.dumps({"outputs": {"answer": "red"}, "trace": []}))
PROXY_503 = (503, "text/plain; charset=utf-8", PROXY_BACKPRESSURE)
APP_503 = (503, "application/json", json.dumps(MMSERVE_OVERLOADED))
CUT = (RESET, "", "")
PROXY_502 = (502, "text/plain", "Bad Gateway")
PROXY_500 = (500, "text/plain; charset=utf-8", "Internal Server Error")
APP_500 = (
    500,
    "application/json",
    json.dumps({"error": {"code": "internal_error", "message": "boom", "request_id": "r2"}}),
)


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


def test_a_repeatable_run_cut_mid_request_is_sent_again(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [CUT, PROXY_502, PROXY_500, OK]
    with Client(url, retry=FAST) as client:
        assert client.run("answer", question="colour?").outputs == {"answer": "red"}
    assert len(_runs(script)) == 4


def test_a_run_with_side_effects_cut_mid_request_is_not_repeated_and_says_so(
    server: tuple[str, Script],
) -> None:
    url, script = server
    for cut in (PROXY_502, CUT):
        script.seen.clear()
        script.answers = [cut, OK]
        with Client(url, retry=FAST) as client, pytest.raises(RequestInterruptedError) as caught:
            client.run("notify", question="colour?")
        assert caught.value.code == "interrupted"
        assert "side effects (send)" in str(caught.value)
        assert "may or may not have run" in str(caught.value)
        assert isinstance(caught.value, ApiServerError)  # callers catching 5xx still do
        assert len(_runs(script)) == 1


def test_mmserves_own_500_is_an_answer_not_a_cut(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [APP_500, OK]
    with Client(url, retry=FAST) as client, pytest.raises(ApiServerError) as caught:
        client.run("answer", question="colour?")
    assert caught.value.code == "internal_error" and caught.value.request_id == "r2"
    assert len(_runs(script)) == 1


def test_collection_writes_cut_mid_request_are_sent_again(server: tuple[str, Script]) -> None:
    url, script = server
    added = {"ids": ["a"], "inserted": 1, "updated": 0, "count": 1}
    script.answers = [CUT, PROXY_502, (200, "application/json", json.dumps(added))]
    with Client(url, retry=FAST) as client:
        assert client.collections.add("notes", texts=["a red car"])["ids"] == ["a"]
    assert len(_runs(script)) == 3


def test_a_collection_write_refused_by_a_restarting_store_is_sent_again(
    server: tuple[str, Script],
) -> None:
    # mmserve's 503 while the store replica restarts: more sends than ``attempts`` allows
    # for a proxy's 503, within the budget, since an upsert by id is applied once
    url, script = server
    unavailable = {
        "error": {"code": "unavailable", "message": "the store is unavailable", "request_id": "r"}
    }
    added = {"ids": ["a"], "inserted": 1, "updated": 0, "count": 1}
    app_unavailable = (503, "application/json", json.dumps(unavailable))
    script.answers = [app_unavailable] * 4 + [(200, "application/json", json.dumps(added))]
    with Client(url, retry=FAST) as client:
        assert client.collections.add("notes", texts=["a red car"])["ids"] == ["a"]
    assert len(_runs(script)) == 5
    script.seen.clear()
    no_budget = RetryPolicy(attempts=3, backoff_s=0.0, budget_s=0.0)
    with Client(url, retry=no_budget) as client, pytest.raises(ApiOverloadedError) as caught:
        client.collections.add("notes", texts=["a red car"])
    assert caught.value.code == "unavailable" and len(_runs(script)) == 1


def test_a_restarting_server_is_waited_for_within_the_budget() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Script()
    script.answers = [OK]
    started = threading.Event()
    holder: list[ThreadingHTTPServer] = []

    def come_back() -> None:  # nothing listens until the client was refused 4 times
        refused.wait(timeout=30)
        httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(script))
        holder.append(httpd)
        started.set()
        httpd.serve_forever()

    refused = threading.Event()
    thread = threading.Thread(target=come_back, daemon=True)
    thread.start()

    class Counting(RetryPolicy):
        def delay(self, attempt: int, retry_after: str | None = None) -> float:
            if attempt >= 3:  # more refusals than the old fixed 3 attempts allowed
                refused.set()
            return 0.05

    try:
        with Client(f"http://127.0.0.1:{port}", retry=Counting(budget_s=60)) as client:
            assert client.run("answer", question="colour?").outputs == {"answer": "red"}
    finally:
        started.wait(timeout=30)
        holder[0].shutdown()
        holder[0].server_close()
        thread.join()


def test_the_budget_ends_the_wait_with_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}", retry=RetryPolicy(budget_s=0.3, backoff_s=0.01)) as c,
        pytest.raises(ServerUnreachableError) as caught,
    ):
        c.health()
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_the_async_client_repeats_a_cut_run_only_when_safe(server: tuple[str, Script]) -> None:
    url, script = server

    async def main() -> None:
        async with AsyncClient(url, retry=FAST) as client:
            script.answers = [CUT, PROXY_502, OK]
            assert (await client.run("answer", question="c?")).outputs == {"answer": "red"}
            assert len(_runs(script)) == 3
            script.seen.clear()
            script.answers = [CUT, OK]
            with pytest.raises(RequestInterruptedError):
                await client.run("notify", question="c?")
            assert len(_runs(script)) == 1

    asyncio.run(main())


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


@pytest.mark.parametrize(
    ("method", "path", "safe"),
    [
        ("GET", "/v1/collections/x/items", True),
        ("POST", "/v1/collections/x/items", True),  # an upsert by id: applied twice is once
        ("POST", "/v1/collections/x/search", True),
        ("DELETE", "/v1/collections/x", False),  # a second drop would answer 404
    ],
)
def test_collection_calls_cut_mid_way_are_repeated_unless_a_drop(
    method: str, path: str, safe: bool
) -> None:
    blocker = repeat_blocker(method, path, {})
    assert (blocker is None) == safe, blocker


@pytest.mark.parametrize(("method", "sent_again"), [("POST", True), ("DELETE", False)])
def test_mmservers_own_503_to_a_collection_write_is_sent_again_unless_a_drop(
    method: str, sent_again: bool
) -> None:
    path = "/v1/collections/x/items" if method == "POST" else "/v1/collections/x"
    refused = httpx.Response(
        503,
        headers={"retry-after": "0"},
        json={"error": {"code": "model_unavailable", "message": "restarting"}},
        request=httpx.Request(method, f"http://mmserve.test{path}"),
    )
    attempts = Attempts(RetryPolicy(budget_s=5), "http://mmserve.test", None, 1.0)
    assert (attempts.after_answer(refused) is not None) == sent_again
