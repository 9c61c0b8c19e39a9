"""Browsing (the optional list_items / get_item), checked on every built-in store, and on
the store replica's class, which answers a caller's mistake as a value (no Ray)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from mmserve.errors import CollectionNotFoundError, InputError, ItemNotFoundError
from mmserve.models.spec import EmbeddingSpace
from mmserve.serve.store_server import Refused, StoreServer
from mmserve.stores import Item, Payload, VectorStore
from mmserve.stores.browse import list_store_items

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="fake", model_id="fake://a", dim=4)


def _images(n: int) -> list[Item]:
    rng = np.random.default_rng(n)
    return [
        Item(
            id=f"i{k}",
            vector=rng.standard_normal(4),
            payload=Payload(image=f"bytes {k}".encode(), metadata={"k": k}),
        )
        for k in range(n)
    ]


def test_pages_leave_images_out_and_get_item_brings_them(store: VectorStore) -> None:
    store.create_collection("pics", space=SPACE, modality="image")
    store.upsert("pics", _images(7), space=SPACE)
    pages = [store.list_items("pics", offset=o, limit=3) for o in (0, 3, 6, 9)]  # type: ignore[attr-defined]
    ids = [[i.id for i in p] for p in pages]
    assert ids == [["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6"], []]
    assert all(i.payload.image is None for p in pages for i in p)
    assert pages[1][0].payload.metadata == {"k": 3}
    item = store.get_item("pics", "i4")  # type: ignore[attr-defined]
    assert (item.id, item.payload.image, item.payload.metadata) == ("i4", b"bytes 4", {"k": 4})


def test_unknown_items_and_collections_are_named(store: VectorStore) -> None:
    store.create_collection("pics", space=SPACE, modality="image")
    store.upsert("pics", _images(1), space=SPACE)
    with pytest.raises(ItemNotFoundError, match="'it''s'|\"it's\""):
        store.get_item("pics", "it's")  # type: ignore[attr-defined]
    with pytest.raises(CollectionNotFoundError):
        store.list_items("nowhere", offset=0, limit=5)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("offset", "limit"), [(-1, 5), (0, 0), (0, 201)])
def test_bad_pages_are_refused_before_the_store(
    store: VectorStore, offset: int, limit: int
) -> None:
    with pytest.raises(InputError):
        list_store_items(store, "pics", offset=offset, limit=limit)


def test_the_store_replica_answers_unknown_items_as_refusals(tmp_path: Path) -> None:
    async def browse() -> tuple[object, object]:
        server = StoreServer("lancedb", str(tmp_path), {})
        await server.create_collection("pics", space=SPACE, modality="image")
        await server.upsert("pics", _images(2), space=SPACE)
        page = await server.list_items("pics", offset=1, limit=5)
        return page, await server.get_item("pics", "nope")

    page, missing = asyncio.run(browse())
    assert isinstance(page, list) and [i.id for i in page] == ["i1"]
    assert isinstance(missing, Refused) and isinstance(missing.error, ItemNotFoundError)
