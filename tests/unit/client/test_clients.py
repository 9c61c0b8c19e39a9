"""Client behaviour that needs exact control of the server's answers (retries, errors)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mmserve import AsyncClient, Client, RetryPolicy
from mmserve.client.errors import (
    ApiInputError,
    ApiNotFoundError,
    ApiOverloadedError,
    ApiServerError,
    RequestInterruptedError,
    ServerUnreachableError,
)

FAST = RetryPolicy(attempts=3, backoff_s=0.0, budget_s=0.2)
WORKFLOWS = {
    "workflows": [
        {
            "name": "caption",
            "inputs": {
                "properties": {
                    "image": {"type": "string", "contentMediaType": "image/*"},
                    "prompt": {"type": "string"},
                }
            },
            "outputs": {},
        }
    ]
}


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "request_id": "req-1"}}
    return httpx.Response(status, json=body, headers=headers)


def test_image_paths_bytes_and_pil_images_are_sent_as_base64(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, format="PNG")
    file = tmp_path / "cat.png"
    file.write_bytes(png.getvalue())
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/workflows":
            return httpx.Response(200, json=WORKFLOWS)
        sent.append(json.loads(request.content))
        assert request.headers["authorization"] == "Bearer secret"
        return httpx.Response(
            200, json={"outputs": {"caption": "x"}, "trace": [], "request_id": "r"}
        )

    with Client(api_key="secret", transport=httpx.MockTransport(handler)) as client:
        for image in (str(file), file, png.getvalue(), Image.open(file)):
            result = client.run("caption", image=image, prompt="a photo of")
            assert result.outputs == {"caption": "x"} and result.request_id == "r"
    for body in sent:
        inputs = body["inputs"]
        assert isinstance(inputs, dict) and inputs["prompt"] == "a photo of"
        decoded = Image.open(io.BytesIO(base64.b64decode(inputs["image"])))
        assert decoded.size == (2, 2)


def test_server_errors_are_typed_and_carry_code_and_request_id() -> None:
    answers = {
        "/v1/workflows/a/run": _error(422, "invalid_input"),
        "/v1/workflows/b/run": _error(404, "workflow_not_found"),
        "/v1/workflows/c/run": _error(500, "internal_error"),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/workflows":
            return httpx.Response(200, json={"workflows": []})
        return answers[request.url.path]

    with Client(transport=httpx.MockTransport(handler), retry=FAST) as client:
        with pytest.raises(ApiInputError) as caught:
            client.run("a", text="x")
        assert (caught.value.code, caught.value.request_id, caught.value.status) == (
            "invalid_input",
            "req-1",
            422,
        )
        assert "invalid_input happened" in str(caught.value)
        with pytest.raises(ApiNotFoundError):
            client.run("b")
        with pytest.raises(ApiServerError):
            client.run("c")


def test_503_with_retry_after_is_retried_then_succeeds() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            return _error(503, "overloaded", {"retry-after": "0"})
        return httpx.Response(200, json={"status": "ok", "ready": True})

    with Client(transport=httpx.MockTransport(handler), retry=FAST) as client:
        assert client.health()["ready"] is True
    assert len(calls) == 3


def test_503_without_retry_after_and_500_are_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return _error(503, "overloaded")

    with (
        Client(transport=httpx.MockTransport(handler), retry=FAST) as client,
        pytest.raises(ApiOverloadedError),
    ):
        client.health()
    assert len(calls) == 1


def test_connection_refused_is_retried_within_the_budget_then_reported_clearly() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("connection refused", request=request)

    with Client(transport=httpx.MockTransport(handler), retry=FAST) as client:
        with pytest.raises(ServerUnreachableError, match="is `mmserve serve` running"):
            client.health()
    assert len(calls) > 1


def test_a_read_error_after_sending_a_run_not_known_to_be_repeatable_is_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/workflows":  # a listing without "repeatable" (older server)
            return httpx.Response(200, json=WORKFLOWS)
        calls.append(1)
        raise httpx.ReadError("connection reset", request=request)

    with Client(transport=httpx.MockTransport(handler), retry=FAST) as client:
        with pytest.raises(RequestInterruptedError, match="does not say whether workflow"):
            client.run("caption")
    assert len(calls) == 1


def test_async_client_mirrors_the_sync_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/workflows":
            return httpx.Response(200, json=WORKFLOWS)
        body = json.loads(request.content)
        return httpx.Response(200, json={"outputs": body["inputs"], "trace": []})

    async def main() -> None:
        async with AsyncClient(transport=httpx.MockTransport(handler)) as client:
            result = await client.run("caption", image=b"png-bytes", prompt="p")
            assert result.outputs["image"] == base64.b64encode(b"png-bytes").decode()
            assert [w["name"] for w in await client.workflows()] == ["caption"]

    asyncio.run(main())


def test_async_collections_have_the_sync_methods_and_signatures() -> None:
    import inspect

    from mmserve.client.collections import AsyncCollections, Collections

    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if inspect.isfunction(member) and not name.startswith("_")
        }

    assert methods(AsyncCollections) == methods(Collections)
    assert {"list", "get", "add", "search", "items", "image"} <= set(methods(Collections))


def test_browse_requests_carry_their_query_and_an_escaped_item_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/items"):
            return httpx.Response(200, json={"total": 0, "items": []})
        buffer = io.BytesIO()
        Image.new("RGB", (4, 2), (9, 9, 9)).save(buffer, format="PNG")
        return httpx.Response(200, content=buffer.getvalue(), headers={"content-type": "image/png"})

    with Client(transport=httpx.MockTransport(handler)) as client:
        client.collections.items("photos", offset=400, limit=200, consistency="strong")
        image = client.collections.image("photos", "a/b c?", size=64)
    listing, fetched = seen
    assert listing.url.path == "/v1/collections/photos/items"
    assert dict(listing.url.params) == {"offset": "400", "limit": "200"}
    assert listing.headers["x-mmserve-consistency"] == "strong"
    assert fetched.url.raw_path == b"/v1/collections/photos/items/a%2Fb%20c%3F/image?size=64"
    assert "x-mmserve-consistency" not in fetched.headers
    assert image.size == (4, 2)


def test_unreadable_image_path_is_a_clear_local_error(tmp_path: Path) -> None:
    from mmserve.errors import InputError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=WORKFLOWS)

    with Client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(InputError, match="cannot read"):
            client.run("caption", image=str(tmp_path / "missing.jpg"))


def test_the_errors_a_caller_catches_import_from_mmserve() -> None:
    import mmserve
    from mmserve.client import errors

    caught = ("ApiInputError", "ApiTimeoutError", "ServerUnreachableError", "InputError")
    for name in (*caught, "RequestInterruptedError"):
        assert getattr(mmserve, name) is getattr(errors, name)
        assert name in mmserve.__all__
