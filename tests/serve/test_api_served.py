"""The hardened API on a real Ray Serve (weight-free ``fake`` models, started once):
API key, real bad bytes, body and pixel limits, the deadline header, a full queue, the
OpenAPI property run, and the Python client round-tripping the shipped workflows (those that
generate images: test_client_tiny.py)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import select
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import schemathesis
from PIL import Image
from serve_support import ROOT, descendants, wait_ready, write_config
from shared_ray import KEY, KEY_ENV

from mmserve.client.clients import AsyncClient, Client
from mmserve.client.errors import ApiAuthError, ApiInputError, ApiNotFoundError
from mmserve.client.retry import is_retryable_status
from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession
from openapi_checks import run_property_checks

pytestmark = pytest.mark.serve

AUTH = {"authorization": f"Bearer {KEY}"}

#: A generated x-mmserve-timeout-s of 1e-300 s rightly ends in 504 (the caller's own
#: deadline), which the property run would count as a server error; the header's checks
#: (400 for bad values, 504 naming the step) are tested on their own.
ROOMY = {**AUTH, "x-mmserve-timeout-s": "60"}
MAX_BODY = 4 * 1024 * 1024
#: The shipped workflows that generate or edit images need the diffusion pipelines, which this
#: app leaves out (two torch processes): test_client_tiny.py round-trips every shipped
#: workflow, these included, on the shared tiny app.
GENERATING = {"generate", "edit", "generate_and_score", "caption_then_generate"}
SHIPPED = sorted(p.stem for p in (ROOT / "workflows").glob("*.yaml") if p.stem not in GENERATING)
SLOW_CAPTION = """
name: slow_caption
inputs:
  image: {type: image}
steps:
  caption:
    uses: caption
    with: {image: "${inputs.image}", model: slow}
outputs:
  caption: ${caption.text}
"""


def _png(mode: str = "RGB", size: tuple[int, int] = (24, 24), fmt: str = "PNG") -> bytes:
    colour: Any = {"RGB": (220, 30, 30), "RGBA": (30, 60, 220, 100), "CMYK": (0, 200, 200, 0)}
    buffer = io.BytesIO()
    Image.new(mode, size, colour.get(mode, 40000 if mode == "I;16" else 1)).save(buffer, fmt)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


class Served:
    def __init__(self, url: str, port: int) -> None:
        self.url, self.port = url, port
        self.http = httpx.Client(base_url=url, headers=AUTH, timeout=60)

    def run(self, workflow: str, **inputs: Any) -> httpx.Response:
        return self.http.post(f"/v1/workflows/{workflow}/run", json={"inputs": inputs})


@pytest.fixture(scope="module")
def served(ray_local: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # The key (KEY_ENV) and gRPC front door are in the shared Ray's environment (shared_ray.py):
    # replicas and Serve's proxy read them from there, as they do under `mmserve serve`.
    folder = tmp_path_factory.mktemp("api")
    (folder / "slow_caption.yaml").write_text(SLOW_CAPTION, encoding="utf-8")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    data = {
        "models": {
            "image_encoder": fake,
            "text_encoder": fake,
            "captioner": fake,
            "vqa": fake,
            # a batch that waits 8 s to fill: a slow step for the deadline and queue tests
            "slow": {
                **fake,
                "role": "captioner",
                "max_ongoing_requests": 64,
                "batch": {"max_size": 64, "wait_ms": 8000},
            },
        },
        "store": {"kind": "lancedb", "path": str(folder / "store")},
        "workflows": [str(ROOT / "workflows"), str(folder / "slow_caption.yaml")],
        "server": {
            "api_key_env": KEY_ENV,
            "max_ongoing_requests": 3,
            "max_queued_requests": 2,
            "limits": {"max_body_bytes": MAX_BODY},
        },
    }
    config_path = write_config(folder, data)
    port = ray_local  # the shared Serve's
    session = ServeSession(AppConfig.load(config_path), port=port)
    try:
        url = session.start()
        served = Served(url, port)
        wait_ready(url)
        yield served
        served.http.close()
    finally:
        session.stop()


def _replicas() -> set[str]:
    names = ray.util.list_named_actors(all_namespaces=True)
    return {n["name"] for n in names if "SERVE_REPLICA" in n["name"]}


def _ingress_rss() -> int:
    """Resident memory (bytes) of this module's ingress replica (a descendant of this
    process: the Ray it started), read from /proc."""
    found = []
    for pid in descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"ServeReplica:mmserve:ingress" in title:
                status = Path(f"/proc/{pid}/status").read_text()
                found.append(int(status.split("VmRSS:")[1].split()[0]) * 1024)
        except (OSError, IndexError):
            continue
    assert len(found) == 1, f"expected one ingress replica process, found {len(found)}"
    return found[0]


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] and error["request_id"] == response.headers["x-request-id"]
    return str(error["message"])


def test_auth(served: Served) -> None:
    assert httpx.get(f"{served.url}/v1/health").status_code == 200
    assert "API key" in _error(httpx.get(f"{served.url}/v1/workflows"), 401)
    wrong = httpx.get(f"{served.url}/v1/workflows", headers={"authorization": "Bearer nope"})
    assert "not valid" in _error(wrong, 401)
    assert served.http.get("/v1/workflows").status_code == 200


def _raw_post(port: int, path: str, headers: dict[str, str], total: int, chunked: bool) -> str:
    """POST up to ``total`` body bytes on a raw socket, stopping as soon as the server answers;
    returns the status line. (An HTTP client would insist on sending everything first.)"""
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append("transfer-encoding: chunked" if chunked else f"content-length: {total}")
    chunk = b"z" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = sock.recv(65536).decode("latin-1")
    return answer.partition("\r\n")[0]


def test_concurrent_requests_ride_one_model_batch(served: Served) -> None:
    """Two runs at once on the ``slow`` model, whose batch is held open 8 s for up to 64
    items: they are answered from one batch of two (forced by the held batch, not hoped for
    under load). It runs before any other test sends to ``slow``: its batch is empty. Two,
    not three: this app's door admits 3 running and 2 queued requests, and Serve's proxy may
    still count the first two as queued when a third arrives (then it answers 503)."""

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as client:
            body = {"inputs": {"image": _b64(_png())}}
            return await asyncio.gather(
                *(client.post("/v1/workflows/slow_caption/run", json=body) for _ in range(2))
            )

    responses = asyncio.run(together())
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert [r.json()["trace"][0]["batch_size"] for r in responses] == [2, 2]


def test_bad_bytes_get_clear_4xx_and_the_server_keeps_serving(served: Served) -> None:
    before, rss_before = _replicas(), _ingress_rss()
    post = served.http.post
    bad_json = post(
        "/v1/workflows/caption/run", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in _error(bad_json, 400)
    as_text = post(
        "/v1/workflows/caption/run", content=b"hi", headers={"content-type": "text/plain"}
    )
    assert "text/plain" in _error(as_text, 415)
    headers = {**AUTH, "content-type": "application/json"}
    for chunked in (False, True):
        status = _raw_post(served.port, "/v1/workflows/caption/run", headers, 100 << 20, chunked)
        assert " 413 " in status, status
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")  # 400 M pixels, ~60 kB
    assert "pixels" in _error(served.run("caption", image=_b64(bomb.getvalue())), 413)
    truncated = _png(fmt="JPEG")[:200]
    assert "'image'" in _error(served.run("caption", image=_b64(truncated)), 422)
    random_png = post("/v1/workflows/caption/run", files={"image": ("r.png", os.urandom(4096))})
    assert "not an image" in _error(random_png, 422)
    assert "empty" in _error(served.run("caption", image=""), 422)
    for mode, fmt, size in [
        ("RGB", "PNG", (1, 1)),
        ("CMYK", "JPEG", (8, 8)),
        ("I;16", "PNG", (8, 8)),
        ("RGBA", "PNG", (8, 8)),
    ]:
        ok = served.run("caption", image=_b64(_png(mode, size, fmt)))
        assert ok.status_code == 200, (mode, ok.text)
    image = _b64(_png())
    assert "100000 characters" in _error(
        served.run("answer", image=image, question="q" * 100_000), 413
    )
    assert "NUL" in _error(served.run("answer", image=image, question="a\x00b"), 422)
    odd = served.run("answer", image=image, question="is it red \u202e\u0301\U0001f600\u4e2d?")
    assert odd.status_code == 200
    assert "'colour'" in _error(served.run("caption", image=image, colour="red"), 422)
    assert "'question'" in _error(served.run("answer", image=image), 422)
    extra = post("/v1/workflows/caption/run", json={"inputs": {"image": image}, "x": 1})
    assert "x" in _error(extra, 422)
    assert "does not fetch URLs" in _error(served.run("caption", image="http://127.0.0.1:1/x"), 422)
    _error(served.run("nope"), 404)
    _error(post("/v1/collections/nope/search", json={"text": "x"}), 404)

    assert served.run("caption", image=image).json()["outputs"]["caption"] == "a red image"
    assert _replicas() == before  # no replica died or was replaced
    assert _ingress_rss() - rss_before < 300 * 1024 * 1024  # the bomb was never decoded


def test_images_larger_than_grpcs_default_message_reach_the_models(served: Served) -> None:
    # 1400 x 1400 RGB is 5.9 MB of pixels once decoded, over gRPC's default 4 MiB message,
    # while its PNG (the request body) is a few kB: the ingress -> model hop carries it.
    big = _b64(_png(size=(1400, 1400)))
    caption = served.run("caption", image=big)
    assert caption.status_code == 200, caption.text
    assert caption.json()["outputs"]["caption"] == "a red image"
    answer = served.run("answer", image=big, question="what colour is it?")
    assert answer.status_code == 200, answer.text


def _noise_png(seed: int, side: int = 830) -> bytes:
    """Random RGB noise: PNG cannot compress it, so the file is ~3 bytes a pixel."""
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_answers_larger_than_grpcs_default_message_reach_the_client(served: Served) -> None:
    # Two ~2 MB photos: each fits the 4 MiB request body, but an answer carrying both (base64)
    # is over gRPC's default 4 MiB, which the proxy's channel to the ingress kept (plain 500).
    photos = [_noise_png(seed) for seed in (1, 2)]
    for photo in photos:
        added = served.http.post(
            "/v1/collections/bignoise/items", json={"items": [{"image": _b64(photo)}]}
        )
        assert added.status_code == 200, added.text
    body = {"text": "noise", "top_k": 2, "include_images": True}
    found = served.http.post("/v1/collections/bignoise/search", json=body)
    assert found.status_code == 200, found.text[:300]
    assert len(found.content) > 4 * 2**20
    # the stored files come back as they were sent, not re-encoded
    assert sorted(m["payload"]["image"] for m in found.json()["matches"]) == sorted(
        map(_b64, photos)
    )
    bare = served.http.post(
        "/v1/collections/bignoise/search", json={**body, "include_images": False}
    )
    assert bare.status_code == 200 and len(bare.content) < 10_000
    assert [m["payload"]["image"] for m in bare.json()["matches"]] == [None, None]


def test_deadline_header_ends_in_504_naming_the_step(served: Served) -> None:
    response = served.http.post(
        "/v1/workflows/slow_caption/run",
        json={"inputs": {"image": _b64(_png())}},
        headers={"x-mmserve-timeout-s": "1"},
    )
    message = _error(response, 504)
    assert "step 'caption'" in message and "1s" in message
    (entry,) = response.json()["error"]["trace"]
    assert entry["step"] == "caption" and entry["status"] == "cancelled"  # the work was stopped


def _ingress_log_lines(marker: str) -> list[str]:
    """Lines of the ingress replica logs of this Ray naming ``marker`` (a request id)."""
    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"
    return [
        line
        for path in logs.glob("replica_mmserve_ingress_*.log")
        for line in path.read_text(errors="replace").splitlines()
        if marker in line
    ]


def test_a_streamed_run_arrives_step_by_step_and_a_disconnect_cancels_it(served: Served) -> None:
    request_id = f"stream-{uuid.uuid4().hex}"
    body = json.dumps({"inputs": {"image": _b64(_png())}}).encode()
    head = [
        "POST /v1/workflows/slow_caption/run HTTP/1.1",
        "host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in AUTH.items()),
        "content-type: application/json",
        "accept: text/event-stream",
        f"x-request-id: {request_id}",
        f"content-length: {len(body)}",
    ]
    received = b""
    with socket.create_connection(("127.0.0.1", served.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        while b"event: step_started" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    # leaving the block closed the connection while the slow step waits for its batch (8 s)
    assert b" 200 " in received.partition(b"\r\n")[0] and b"text/event-stream" in received
    # through Serve's proxy each event comes as it happens: the step's end was not buffered
    assert b"event: step_finished" not in received and b"event: result" not in received
    # Serve's proxy saw the disconnect and cancelled the ingress's work on the request, which
    # cancels the run and its running step (the unit tier shows the step cancelled); the
    # access line is written once the request has ended, long before the step's 8 s batch
    ended: list[str] = []
    for _ in range(120):
        ended = _ingress_log_lines(request_id)
        if any("Cancelling request" in line or " -- POST /v1/workflows/" in line for line in ended):
            break
        time.sleep(0.5)
    assert any("Cancelling request" in line for line in ended), ended
    assert served.run("caption", image=_b64(_png())).status_code == 200


def test_a_full_queue_answers_503_with_retry_after_then_recovers(served: Served) -> None:
    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as client:
            body = {"inputs": {"image": _b64(_png())}}
            return await asyncio.gather(
                *(client.post("/v1/workflows/slow_caption/run", json=body) for _ in range(12))
            )

    responses = asyncio.run(flood())
    statuses = sorted(r.status_code for r in responses)
    rejected = [r for r in responses if r.status_code == 503]
    assert rejected and all("retry-after" in r.headers for r in rejected), statuses
    # Serve's proxy refused them before the app ran them: the client may send them again
    assert all(is_retryable_status(r) for r in rejected), rejected[0].text
    assert "error" not in rejected[0].text and "backpressure" in rejected[0].text
    assert 200 in statuses, statuses
    assert served.run("caption", image=_b64(_png())).status_code == 200


def test_openapi_property_run_finds_no_5xx_or_schema_breaks(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json", headers=AUTH)
    failures = run_property_checks(schema, examples=6, headers=ROOMY)
    assert not failures, "\n\n".join(failures)


def _inputs(workflow: str, image: bytes) -> dict[str, Any]:
    return {
        "caption": {"image": image},
        "answer": {"image": image, "question": "what colour is it?"},
        "classify": {"image": image, "labels": ["red", "blue"]},
        "describe": {"image": image},
        "caption_then_retrieve": {"image": image, "collection": "captions", "top_k": 2},
        "retrieve_then_answer": {"question": "is it red?", "collection": "images"},
        "search_images": {"text": "red", "collection": "images", "top_k": 1},
        "answer_each": {"question": "is it red?", "collection": "images", "top_k": 2},
        "caption_matches": {"text": "red", "collection": "images", "top_k": 2},
        "classify_then_answer": {"image": image, "question": "what is it?", "labels": ["a", "b"]},
    }[workflow]


def test_client_round_trips_every_shipped_workflow_sync_and_async(
    served: Served, tmp_path: Path
) -> None:
    red = tmp_path / "red.png"
    red.write_bytes(_png())
    blue = Image.new("RGB", (24, 24), (30, 60, 220))
    with Client(served.url, api_key=KEY) as client:
        added = client.collections.add(
            "captions", texts=["a red image", "a blue sky"], ids=["r", "b"]
        )
        assert added["ids"] == ["r", "b"] and added["count"] == 2
        client.collections.add("images", images=[red, blue], metadata={"set": "test"})
        assert {c["name"] for c in client.collections.list()} >= {"captions", "images"}
        assert client.collections.search("captions", text="red", top_k=1)[0]["id"] == "r"
        sync = {w: client.run(w, **_inputs(w, red.read_bytes())) for w in SHIPPED}
        with pytest.raises(ApiNotFoundError) as missing:
            client.run("no_such_workflow")
        assert missing.value.code == "workflow_not_found" and missing.value.request_id
        with pytest.raises(ApiInputError) as bad:
            client.run("caption", image=b"not an image")
        assert (
            bad.value.status == 422 and bad.value.code == "invalid_input" and bad.value.request_id
        )
    with pytest.raises(ApiAuthError) as denied, Client(served.url, api_key="wrong") as stranger:
        stranger.workflows()
    assert denied.value.code == "unauthorized" and denied.value.request_id

    async def run_async() -> dict[str, Any]:
        async with AsyncClient(served.url, api_key=KEY) as client:
            found = await client.collections.search("images", text="red", top_k=1)
            assert found[0]["payload"]["metadata"] == {"set": "test"}
            return {w: await client.run(w, **_inputs(w, red.read_bytes())) for w in SHIPPED}

    asynced = asyncio.run(run_async())
    assert sync["caption"].outputs["caption"] == "a red image"
    for workflow in SHIPPED:
        assert sync[workflow].outputs == asynced[workflow].outputs, workflow
        assert sync[workflow].request_id and sync[workflow].trace
