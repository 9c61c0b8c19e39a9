"""The Python client against the real API app in process (httpx's ASGI transport, no Ray):
runs, collections and browsing them, the deadline, and typed errors carrying the server's
code and request id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from api_support import KEY, build_api, image_bytes, serving
from fastapi import FastAPI
from PIL import Image

from mmserve import AsyncClient, Client
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


def _pixels(image: Image.Image) -> bytes:
    return image.convert("RGB").tobytes()


def test_browse_pages_and_images_sync_and_async(app: FastAPI) -> None:
    """``items`` pages through a collection (ids, texts, metadata, the total) and ``image``
    answers an item's stored file, or a thumbnail; the same on both clients."""
    big = Image.new("RGB", (64, 32), (30, 160, 60))
    with serving(app) as url, Client(url, api_key=KEY) as client:
        names = [f"tile/{n}?#" for n in range(3)]  # ids needing escapes in a path
        images = [big, *(Image.new("RGB", (8, 8), (n * 40, 0, 0)) for n in range(1, 3))]
        client.collections.add("browse", images=images, ids=names, metadata={"set": "b"})
        client.collections.add("browse_notes", texts=["one note", "two notes"], ids=["a", "b"])
        first = client.collections.items("browse", limit=2)
        rest = client.collections.items("browse", offset=2, limit=2, consistency="strong")
        got = client.collections.image("browse", names[0])
        small = client.collections.image("browse", names[0], size=16)
        notes = client.collections.items("browse_notes")
        with pytest.raises(ApiNotFoundError) as no_collection:
            client.collections.items("nowhere")
        with pytest.raises(ApiNotFoundError) as no_item:
            client.collections.image("browse", "no such id")
        with pytest.raises(ApiNotFoundError) as text_item:
            client.collections.image("browse_notes", "a")
        with pytest.raises(ApiInputError):
            client.collections.items("browse", limit=201)

    assert (first["total"], first["offset"], first["limit"]) == (3, 0, 2)
    assert [i["id"] for i in first["items"] + rest["items"]] == names
    assert first["items"][0] == {
        "id": names[0],
        "text": None,
        "has_image": True,
        "metadata": {"set": "b"},
    }
    assert got.size == (64, 32) and _pixels(got) == _pixels(big)
    assert small.size == (16, 8)
    assert [(i["id"], i["text"], i["has_image"]) for i in notes["items"]] == [
        ("a", "one note", False),
        ("b", "two notes", False),
    ]
    assert no_collection.value.code == "collection_not_found" and no_collection.value.request_id
    assert no_item.value.code == text_item.value.code == "item_not_found"
    assert "text item" in text_item.value.message

    async def scenario() -> tuple[dict[str, object], Image.Image]:
        async with _client(app, api_key=KEY) as client:
            with pytest.raises(ApiNotFoundError):
                await client.collections.image("nowhere", "x")
            page = await client.collections.items("browse", offset=1, limit=1)
            return page, await client.collections.image("browse", names[1], size=16)

    page, image = asyncio.run(scenario())
    assert page["items"] == [first["items"][1]] and page["total"] == 3  # type: ignore[index]
    assert image.size == (8, 8) and _pixels(image) == _pixels(images[1])


def test_an_answer_that_is_not_an_image_is_a_serving_error() -> None:
    from mmserve.client.errors import ServingError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>a proxy page</html>")

    with Client("http://api", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ServingError, match="not an image"):
            client.collections.image("photos", "x")


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
