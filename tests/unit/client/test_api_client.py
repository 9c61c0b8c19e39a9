"""The Python client against the real API app in process (httpx's ASGI transport, no Ray):
runs, collections, the deadline, and typed errors carrying the server's code and request id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from api_support import KEY, build_api, image_bytes
from fastapi import FastAPI
from PIL import Image

from mmserve import AsyncClient
from mmserve.client.errors import ApiAuthError, ApiInputError, ApiNotFoundError, ApiTimeoutError
from mmserve.errors import InputError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def app() -> Iterator[FastAPI]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMSERVE_UNIT_KEY", KEY)
        yield build_api({"api_key_env": "MMSERVE_UNIT_KEY"})


def _client(app: FastAPI, **options: object) -> AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return AsyncClient("http://api", transport=transport, **options)  # type: ignore[arg-type]


def test_runs_and_collections_round_trip(app: FastAPI) -> None:
    async def scenario() -> None:
        async with _client(app, api_key=KEY) as client:
            result = await client.run("caption", image=image_bytes())
            assert result.outputs == {"caption": "a red image"} and result.request_id
            added = await client.collections.add(
                "photos",
                images=[image_bytes(), Image.new("RGB", (8, 8), (30, 60, 220))],
                ids=["red", "blue"],
                metadata={"album": "unit"},
            )
            assert added["ids"] == ["red", "blue"] and added["inserted"] == 2
            again = await client.collections.add(
                "photos", items=[{"image": image_bytes(), "id": "red"}]
            )
            assert again["updated"] == 1 and again["count"] == 2
            found = await client.collections.search("photos", text="blue", top_k=1)
            assert found[0]["id"] == "blue" and found[0]["payload"]["metadata"] == {"album": "unit"}
            assert found[0]["payload"]["image"]  # the stored file, base64
            listing = await client.collections.list()
            assert [c["name"] for c in listing] == ["photos"]
            assert (await client.collections.get("photos"))["modality"] == "image"

    asyncio.run(scenario())


def test_typed_errors_carry_code_and_request_id(app: FastAPI) -> None:
    async def scenario() -> None:
        async with _client(app, api_key=KEY) as client:
            with pytest.raises(ApiNotFoundError) as missing:
                await client.collections.search("nowhere", text="x")
            assert missing.value.code == "collection_not_found" and missing.value.request_id
            with pytest.raises(ApiInputError) as bad:
                await client.run("caption", image=b"not an image")
            assert bad.value.status == 422 and "'image'" in bad.value.message
            with pytest.raises(InputError):  # refused locally, before any request
                await client.collections.add("x", texts=["a"], images=[b"b"])
        async with _client(app, api_key=KEY, deadline_s=1e-9) as hurried:
            with pytest.raises(ApiTimeoutError) as late:
                await hurried.run("caption", image=image_bytes())
            assert late.value.code == "deadline_exceeded" and "caption" in late.value.message
        async with _client(app, api_key="wrong") as stranger:
            with pytest.raises(ApiAuthError) as denied:
                await stranger.workflows()
            assert denied.value.code == "unauthorized" and denied.value.request_id

    asyncio.run(scenario())


def test_a_plain_text_overload_answer_is_still_typed() -> None:
    """Serve's proxy answers a full queue itself, in plain text, with Retry-After."""
    from mmserve import Client, RetryPolicy
    from mmserve.client.errors import ApiOverloadedError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, text="Request dropped due to backpressure", headers={"retry-after": "0"}
        )

    transport = httpx.MockTransport(handler)
    with Client("http://api", transport=transport, retry=RetryPolicy(attempts=2)) as client:
        with pytest.raises(ApiOverloadedError) as busy:
            client.health()
    assert busy.value.code == "overloaded" and "backpressure" in busy.value.message
