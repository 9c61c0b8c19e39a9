"""The store extension point, as a third party uses it: a dict-backed store written with
public mmserve names only, registered by name, passes the contract mmserve ships by
subclassing its test classes, and is served by the engine (awaitable, images on request)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from mmserve.errors import CollectionNotFoundError, ItemNotFoundError, StoreError
from mmserve.models.spec import EmbeddingSpace
from mmserve.registry import Registry
from mmserve.stores import (
    Capability,
    Collection,
    Item,
    Match,
    Modality,
    Payload,
    StoredItem,
    UpsertResult,
    VectorStore,
    open_store_at,
)
from mmserve.stores.async_store import as_async_store
from mmserve.stores.contract import (
    Vector,
    as_vector,
    check_collection_name,
    check_same_collection,
    check_space,
    validate_top_k,
)
from mmserve.testing.store_contract import SPACE, BrowsingContract, VectorStoreContract, unit

pytestmark = pytest.mark.unit


class DictStore:
    """Items in dicts; browsable, but its search always returns the images (it does not
    declare ``images_on_request``)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({"browse"})

    def __init__(self, location: str, options: Mapping[str, Any] | None = None) -> None:
        self._collections: dict[str, Collection] = {}
        self._items: dict[str, dict[str, tuple[Vector, Payload]]] = {}
        self._lock = threading.Lock()

    def _rows(self, name: str) -> dict[str, tuple[Vector, Payload]]:
        if name not in self._items:
            raise CollectionNotFoundError(name=name, known=sorted(self._items))
        return self._items[name]

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        check_collection_name(name)
        with self._lock:
            if name in self._collections:
                if not exist_ok:
                    raise StoreError(f"collection {name!r} already exists")
                check_same_collection(self._collections[name], space, modality)
            else:
                self._collections[name] = Collection(name=name, space=space, modality=modality)
                self._items[name] = {}
        return self.get_collection(name)

    def get_collection(self, name: str) -> Collection:
        rows = self._rows(name)
        return self._collections[name].model_copy(update={"count": len(rows)})

    def list_collections(self) -> list[Collection]:
        return [self.get_collection(name) for name in sorted(self._collections)]

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._rows(name)
            del self._items[name], self._collections[name]

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        with self._lock:
            rows = self._rows(name)
            check_space(self._collections[name], space)
            result = UpsertResult()
            for item in items:
                if item.id in rows:
                    result.updated += 1
                else:
                    result.inserted += 1
                rows[item.id] = (as_vector(item.vector, dim=space.dim), item.payload)
            return result

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        return set(ids) & set(self._rows(name))

    def search(
        self, name: str, vector: Vector, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        validate_top_k(top_k)
        rows = self._rows(name)
        check_space(self._collections[name], space)
        query = as_vector(vector, dim=space.dim)
        scored = sorted(((-float(v @ query), i) for i, (v, _) in rows.items()))[:top_k]
        return [Match(id=i, score=-s, payload=rows[i][1]) for s, i in scored]

    def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        rows = list(self._rows(name).items())[offset : offset + limit]
        return [
            StoredItem(id=i, payload=p.model_copy(update={"image": None})) for i, (_, p) in rows
        ]

    def get_item(self, name: str, item_id: str) -> StoredItem:
        rows = self._rows(name)
        if item_id not in rows:
            raise ItemNotFoundError(
                f"collection {name!r} has no item {item_id!r}", collection=name, item_id=item_id
            )
        return StoredItem(id=item_id, payload=rows[item_id][1])

    def optimize(self, name: str) -> None:
        self._rows(name)

    def close(self) -> None:
        self._items.clear()


def _registry() -> Registry:
    own = Registry()
    own.register("store", "dict", DictStore)
    return own


class TestDictStore(VectorStoreContract, BrowsingContract):
    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        opened = open_store_at("dict", "anywhere", registry=_registry())
        yield opened
        opened.close()


def test_the_engine_leaves_its_images_out_when_asked() -> None:
    store = open_store_at("dict", "anywhere", registry=_registry())
    store.create_collection("pics", space=SPACE, modality="image")
    item = Item(id="a", vector=unit(1), payload=Payload(image=b"png", metadata={"n": 1}))
    store.upsert("pics", [item], space=SPACE)
    engine = as_async_store(store)

    async def both() -> tuple[list[Match], list[Match]]:
        bare = await engine.search("pics", unit(1), space=SPACE, include_images=False)
        return bare, await engine.search("pics", unit(1), space=SPACE)

    bare, full = asyncio.run(both())
    assert (bare[0].id, bare[0].payload.image, bare[0].payload.metadata) == ("a", None, {"n": 1})
    assert full[0].payload.image == b"png"
    assert [i.id for i in asyncio.run(engine.list_items("pics"))] == ["a"]


def test_a_wrong_capability_declaration_fails_when_the_store_opens() -> None:
    class Unknown(DictStore):
        capabilities = frozenset({"teleport"})  # type: ignore[arg-type]

    class Unbacked(DictStore):
        capabilities = frozenset({"browse"})
        list_items = None  # type: ignore[assignment]

    own = _registry()
    own.register("store", "unknown", Unknown)
    own.register("store", "unbacked", Unbacked)
    with pytest.raises(StoreError, match="unknown capability 'teleport'"):
        open_store_at("unknown", "", registry=own)
    with pytest.raises(StoreError, match="declares 'browse' but has no list_items"):
        open_store_at("unbacked", "", registry=own)
