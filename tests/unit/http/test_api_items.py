"""Browsing collections over HTTP: a page of items, an item's image and its thumbnails, the
bad requests (page parameters, unknown items, text items), and store plugins that predate
browsing (501). The in-process API with the memory store (no Ray)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from api_support import AUTH, KEY, b64, build_api, image_bytes
from fastapi.testclient import TestClient
from PIL import Image

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Match, MemoryStore, UpsertResult
from mmserve.stores.contract import Collection, Modality, Vector

pytestmark = pytest.mark.unit

SIZES = [(40, 30), (64, 64), (20, 50), (33, 33), (80, 10)]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_api(), headers=AUTH) as test_client:
        images = [
            {"id": f"img{n}", "image": b64(image_bytes(size=s)), "metadata": {"n": n}}
            for n, s in enumerate(SIZES)
        ]
        assert test_client.post("/v1/collections/pics/items", json={"items": images}).is_success
        rgba = {"id": "dir/see-through", "image": b64(image_bytes("RGBA", (50, 40)))}
        assert test_client.post("/v1/collections/pics/items", json={"items": [rgba]}).is_success
        texts = [{"id": "t1", "text": "a red circle"}, {"id": "t2", "text": "a blue square"}]
        assert test_client.post("/v1/collections/notes/items", json={"items": texts}).is_success
        yield test_client


def test_pages_list_every_item_once_in_insertion_order(client: TestClient) -> None:
    seen = []
    for offset in (0, 2, 4):
        page = client.get("/v1/collections/pics/items", params={"offset": offset, "limit": 2})
        assert page.status_code == 200, page.text
        body = page.json()
        assert (body["total"], body["offset"], body["limit"]) == (6, offset, 2)
        seen += body["items"]
    assert [i["id"] for i in seen] == [f"img{n}" for n in range(5)] + ["dir/see-through"]
    assert all(i["has_image"] and i["text"] is None for i in seen)
    assert seen[3]["metadata"] == {"n": 3}
    past = client.get("/v1/collections/pics/items", params={"offset": 10}).json()
    assert past["items"] == [] and past["total"] == 6


def test_text_items_are_listed_with_their_texts(client: TestClient) -> None:
    items = client.get("/v1/collections/notes/items").json()["items"]
    assert [(i["id"], i["text"], i["has_image"]) for i in items] == [
        ("t1", "a red circle", False),
        ("t2", "a blue square", False),
    ]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "ten"}, "offset"),
        ({"limit": "1.5"}, "limit"),
    ],
)
def test_bad_page_parameters_are_refused_naming_them(
    client: TestClient, params: dict[str, Any], named: str
) -> None:
    answer = client.get("/v1/collections/pics/items", params=params)
    assert answer.status_code in (400, 422), answer.text
    assert named in answer.json()["error"]["message"]


def test_an_unknown_collection_is_a_404(client: TestClient) -> None:
    answer = client.get("/v1/collections/nowhere/items")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "collection_not_found"
    image = client.get("/v1/collections/nowhere/items/img0/image")
    assert image.json()["error"]["code"] == "collection_not_found"


def test_the_image_is_the_stored_file_byte_for_byte(client: TestClient) -> None:
    answer = client.get("/v1/collections/pics/items/img2/image")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.content == image_bytes(size=SIZES[2])


@pytest.mark.parametrize("size", [16, 24, 1024])
def test_thumbnails_fit_the_size_and_keep_the_aspect(client: TestClient, size: int) -> None:
    for n, (width, height) in enumerate(SIZES):
        answer = client.get(f"/v1/collections/pics/items/img{n}/image", params={"size": size})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(answer.content)) as thumb:
            assert max(thumb.size) == min(size, max(width, height))
            assert abs(thumb.size[0] / thumb.size[1] - width / height) < 0.35


def test_a_transparent_image_keeps_its_alpha_in_a_png_thumbnail(client: TestClient) -> None:
    answer = client.get("/v1/collections/pics/items/dir/see-through/image", params={"size": 20})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(answer.content)) as thumb:
        assert thumb.mode == "RGBA" and thumb.size == (20, 16)


@pytest.mark.parametrize("size", ["0", "15", "1025", "big", "-3"])
def test_bad_thumbnail_sizes_are_refused(client: TestClient, size: str) -> None:
    answer = client.get("/v1/collections/pics/items/img0/image", params={"size": size})
    assert answer.status_code in (400, 422), answer.text
    assert "size" in answer.json()["error"]["message"]


def test_an_unknown_item_is_a_404_naming_it(client: TestClient) -> None:
    answer = client.get("/v1/collections/pics/items/nope/image")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "item_not_found" and "'nope'" in error["message"]


def test_a_text_item_has_no_image(client: TestClient) -> None:
    answer = client.get("/v1/collections/notes/items/t1/image", params={"size": 64})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "item_not_found" and "text item" in error["message"]


class OldStore:
    """A store plugin written before list_items/get_item: it delegates the rest."""

    def __init__(self, location: str = "old", options: Mapping[str, Any] | None = None) -> None:
        self._inner = MemoryStore()

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        return self._inner.create_collection(name, space=space, modality=modality)

    def get_collection(self, name: str) -> Collection:
        return self._inner.get_collection(name)

    def list_collections(self) -> list[Collection]:
        return self._inner.list_collections()

    def drop_collection(self, name: str) -> None:
        self._inner.drop_collection(name)

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        return self._inner.upsert(name, items, space=space)

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        return self._inner.existing_ids(name, ids)

    def search(
        self, name: str, vector: Vector, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        return self._inner.search(name, vector, space=space, top_k=top_k)

    def optimize(self, name: str) -> None:
        self._inner.optimize(name)

    def close(self) -> None:
        self._inner.close()


def test_a_store_plugin_without_browsing_answers_501_and_still_searches() -> None:
    with TestClient(build_api(store=OldStore()), headers=AUTH) as old:
        added = old.post(
            "/v1/collections/pics/items", json={"items": [{"image": b64(image_bytes())}]}
        )
        assert added.status_code == 200, added.text
        for path in ("/v1/collections/pics/items", "/v1/collections/pics/items/x/image"):
            answer = old.get(path)
            assert answer.status_code == 501
            error = answer.json()["error"]
            assert error["code"] == "not_implemented" and "OldStore" in error["message"]
        found = old.post("/v1/collections/pics/search", json={"text": "red", "top_k": 1})
        assert found.status_code == 200 and len(found.json()["matches"]) == 1


def test_the_routes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    listing = paths["/v1/collections/{name}/items"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"name", "offset", "limit"}
    image = paths["/v1/collections/{name}/items/{item_id}/image"]["get"]
    assert {p["name"] for p in image["parameters"]} == {"name", "item_id", "size"}
    assert "image/*" in image["responses"]["200"]["content"]
    assert KEY not in str(paths)
