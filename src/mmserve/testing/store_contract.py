"""The vector store contract as tests: subclass them to check a store (built-in or your own).

:class:`~mmserve.stores.contract.VectorStore` says what a store must do; the classes here
check it, one class per protocol. A store's test module subclasses those that apply and
provides one fixture, ``store``: a freshly opened, empty store, closed afterwards::

    # tests/test_contract.py of a store plugin's package
    from collections.abc import Iterator
    from pathlib import Path

    import pytest

    from mmserve.stores import VectorStore, open_store_at
    from mmserve.testing.store_contract import (
        BrowsingContract,
        ImagesOnRequestContract,
        VectorStoreContract,
    )


    class TestMyStore(VectorStoreContract, BrowsingContract, ImagesOnRequestContract):
        @pytest.fixture
        def store(self, tmp_path: Path) -> Iterator[VectorStore]:
            opened = open_store_at("my-store", str(tmp_path / "data"))
            yield opened
            opened.close()

:class:`VectorStoreContract` is what every store passes; :class:`BrowsingContract` is for a
store that declares the capability ``"browse"``, :class:`ImagesOnRequestContract` for one that
declares ``"images_on_request"``. Pytest collects the ``test_*`` methods of the subclass (its
name must start with ``Test``), so the contract runs under the store's own test ids, e.g.
``tests/test_contract.py::TestMyStore::test_upsert_is_idempotent_by_id``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from mmserve.errors import (
    CollectionNotFoundError,
    EmbeddingSpaceMismatchError,
    InputError,
    ItemNotFoundError,
    StoreError,
)
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores.browse import list_store_items
from mmserve.stores.contract import (
    BrowsableStore,
    ImagesOnRequestStore,
    Item,
    Payload,
    VectorStore,
    can_browse,
    capabilities_of,
    content_id,
    leaves_images_out,
)

#: The embedding space the contract's collections are created in, and another one.
SPACE = EmbeddingSpace(backend="fake", model_id="fake://a", dim=8)
OTHER_SPACE = EmbeddingSpace(backend="fake", model_id="fake://b", dim=8)
#: Collection names every store must refuse.
BAD_NAMES = ["", "1abc", "a b", "../x", "a'b", "x" * 200]


def unit(seed: int, dim: int = 8) -> npt.NDArray[np.float32]:
    """A random unit vector (the same for the same seed)."""
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)  # type: ignore[no-any-return]


def text_items(n: int, start: int = 0) -> list[Item]:
    """``n`` text items ``text {i}`` with metadata ``{"n": i}``, ids their content ids."""
    return [
        Item(
            id=content_id(text=f"text {i}"),
            vector=unit(i),
            payload=Payload(text=f"text {i}", metadata={"n": i}),
        )
        for i in range(start, start + n)
    ]


def image_items(n: int, dim: int = 8) -> list[Item]:
    """``n`` image items ``i0``.. with image bytes ``bytes {k}`` and metadata ``{"k": k}``."""
    rng = np.random.default_rng(n)
    return [
        Item(
            id=f"i{k}",
            vector=rng.standard_normal(dim).astype(np.float32),
            payload=Payload(image=f"bytes {k}".encode(), metadata={"k": k}),
        )
        for k in range(n)
    ]


class VectorStoreContract:
    """What every store does (:class:`~mmserve.stores.contract.VectorStore`). A subclass
    provides the fixture ``store``."""

    def test_the_store_is_a_vector_store(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)
        capabilities_of(store)  # a declaration, if any, names known capabilities it has

    def test_create_list_get_drop(self, store: VectorStore) -> None:
        created = store.create_collection("notes", space=SPACE, modality="text")
        assert (created.name, created.space, created.modality, created.count) == (
            "notes",
            SPACE,
            "text",
            0,
        )
        store.upsert("notes", text_items(3), space=SPACE)
        assert [(c.name, c.count) for c in store.list_collections()] == [("notes", 3)]
        store.drop_collection("notes")
        assert store.list_collections() == []
        with pytest.raises(CollectionNotFoundError):
            store.get_collection("notes")

    def test_unknown_collection_lists_known(self, store: VectorStore) -> None:
        store.create_collection("alpha", space=SPACE, modality="text")
        with pytest.raises(CollectionNotFoundError, match="alpha") as info:
            store.search("beta", unit(0), space=SPACE)
        assert "beta" in str(info.value)

    def test_unknown_collection_is_refused_by_every_method(self, store: VectorStore) -> None:
        calls: dict[str, Any] = {
            "get_collection": lambda: store.get_collection("nowhere"),
            "drop_collection": lambda: store.drop_collection("nowhere"),
            "upsert": lambda: store.upsert("nowhere", text_items(1), space=SPACE),
            "existing_ids": lambda: store.existing_ids("nowhere", ["a"]),
            "search": lambda: store.search("nowhere", unit(0), space=SPACE),
            "optimize": lambda: store.optimize("nowhere"),
        }
        for method, call in calls.items():
            with pytest.raises(CollectionNotFoundError, match="nowhere"):
                call()
                pytest.fail(f"{method} of an unknown collection did not raise")

    def test_upsert_is_idempotent_by_id(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        first = store.upsert("notes", text_items(5), space=SPACE)
        again = store.upsert("notes", text_items(5), space=SPACE)
        assert (first.inserted, first.updated) == (5, 0)
        assert (again.inserted, again.updated) == (0, 5)
        assert store.get_collection("notes").count == 5

    def test_upsert_replaces_payload_of_same_id(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        old = Item(id="x", vector=unit(1), payload=Payload(text="old"))
        store.upsert("notes", [old], space=SPACE)
        new = Item(id="x", vector=unit(2), payload=Payload(text="new"))
        store.upsert("notes", [new], space=SPACE)
        [match] = store.search("notes", unit(2), space=SPACE, top_k=1)
        assert (match.id, match.payload.text) == ("x", "new")
        assert match.score == pytest.approx(1.0, abs=1e-5)

    def test_search_ranks_by_cosine_similarity(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        items = text_items(20)
        store.upsert("notes", items, space=SPACE)
        query = unit(7) + 0.1 * unit(100)
        matches = store.search("notes", query, space=SPACE, top_k=4)
        direction = query / np.linalg.norm(query)
        expected = sorted(items, key=lambda it: -float(it.vector @ direction))
        assert [m.id for m in matches] == [it.id for it in expected[:4]]
        assert matches[0].payload.text == "text 7"
        assert matches[0].payload.metadata == {"n": 7}
        scores = [m.score for m in matches]
        assert scores == sorted(scores, reverse=True)
        assert -1.0 - 1e-5 <= scores[-1] <= scores[0] <= 1.0 + 1e-5

    def test_search_of_empty_collection_is_empty(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        assert store.search("notes", unit(0), space=SPACE) == []

    def test_other_space_is_refused_naming_both(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        store.upsert("notes", text_items(2), space=SPACE)
        with pytest.raises(EmbeddingSpaceMismatchError) as info:
            store.search("notes", unit(0), space=OTHER_SPACE)
        assert str(SPACE) in str(info.value) and str(OTHER_SPACE) in str(info.value)
        with pytest.raises(EmbeddingSpaceMismatchError):
            store.upsert("notes", text_items(1), space=OTHER_SPACE)

    def test_recreating_with_other_space_or_modality_is_refused(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        assert store.create_collection("notes", space=SPACE, modality="text").name == "notes"
        with pytest.raises(EmbeddingSpaceMismatchError):
            store.create_collection("notes", space=OTHER_SPACE, modality="text")
        with pytest.raises(StoreError, match="holds text items"):
            store.create_collection("notes", space=SPACE, modality="image")
        with pytest.raises(StoreError, match="already exists"):
            store.create_collection("notes", space=SPACE, modality="text", exist_ok=False)

    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_bad_collection_names_are_refused(self, store: VectorStore, name: str) -> None:
        with pytest.raises(InputError, match="invalid collection name"):
            store.create_collection(name, space=SPACE, modality="text")

    def test_wrong_dimension_is_refused(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        with pytest.raises(InputError, match="dimension 3"):
            store.search("notes", np.ones(3, dtype=np.float32), space=SPACE)

    def test_top_k_bounds(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        with pytest.raises(InputError, match="top_k"):
            store.search("notes", unit(0), space=SPACE, top_k=0)

    def test_existing_ids_handles_quotes_and_missing(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        store.upsert(
            "notes", [Item(id="it's", vector=unit(1)), Item(id="b", vector=unit(2))], space=SPACE
        )
        assert store.existing_ids("notes", ["it's", "nope", "b", "b"]) == {"it's", "b"}
        assert store.existing_ids("notes", []) == set()

    def test_image_payload_round_trips(self, store: VectorStore) -> None:
        store.create_collection("pics", space=SPACE, modality="image")
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        payload = Payload(image=png, metadata={"source": "a.png"})
        store.upsert("pics", [Item(id="p", vector=unit(3), payload=payload)], space=SPACE)
        [match] = store.search("pics", unit(3), space=SPACE, top_k=1)
        assert match.payload.image == png
        assert match.payload.text is None
        assert match.payload.metadata == {"source": "a.png"}

    def test_optimize_keeps_results(self, store: VectorStore) -> None:
        store.create_collection("notes", space=SPACE, modality="text")
        for start in range(0, 30, 10):
            store.upsert("notes", text_items(10, start), space=SPACE)
        store.optimize("notes")
        assert store.get_collection("notes").count == 30
        assert store.search("notes", unit(25), space=SPACE, top_k=1)[0].payload.text == "text 25"


def _browsable(store: VectorStore) -> BrowsableStore:
    assert can_browse(store), f"{type(store).__name__} does not declare the capability 'browse'"
    return store


class BrowsingContract:
    """What a store declaring ``"browse"`` does
    (:class:`~mmserve.stores.contract.BrowsableStore`). A subclass provides ``store``."""

    def test_pages_leave_images_out_and_get_item_brings_them(self, store: VectorStore) -> None:
        browsable = _browsable(store)
        browsable.create_collection("pics", space=SPACE, modality="image")
        browsable.upsert("pics", image_items(7), space=SPACE)
        pages = [browsable.list_items("pics", offset=o, limit=3) for o in (0, 3, 6, 9)]
        ids = [[i.id for i in p] for p in pages]
        assert ids == [["i0", "i1", "i2"], ["i3", "i4", "i5"], ["i6"], []]
        assert all(i.payload.image is None for p in pages for i in p)
        assert pages[1][0].payload.metadata == {"k": 3}
        item = browsable.get_item("pics", "i4")
        assert (item.id, item.payload.image, item.payload.metadata) == ("i4", b"bytes 4", {"k": 4})

    def test_unknown_items_and_collections_are_named(self, store: VectorStore) -> None:
        browsable = _browsable(store)
        browsable.create_collection("pics", space=SPACE, modality="image")
        browsable.upsert("pics", image_items(1), space=SPACE)
        with pytest.raises(ItemNotFoundError, match=r"'it''s'|\"it's\""):
            browsable.get_item("pics", "it's")
        with pytest.raises(CollectionNotFoundError):
            browsable.list_items("nowhere", offset=0, limit=5)

    @pytest.mark.parametrize(("offset", "limit"), [(-1, 5), (0, 0), (0, 201)])
    def test_bad_pages_are_refused_before_the_store(
        self, store: VectorStore, offset: int, limit: int
    ) -> None:
        with pytest.raises(InputError):
            list_store_items(_browsable(store), "pics", offset=offset, limit=limit)


class ImagesOnRequestContract:
    """What a store declaring ``"images_on_request"`` does
    (:class:`~mmserve.stores.contract.ImagesOnRequestStore`). A subclass provides ``store``."""

    def test_image_bytes_are_left_out_unless_asked(self, store: VectorStore) -> None:
        assert leaves_images_out(store), (
            f"{type(store).__name__} does not declare the capability 'images_on_request'"
        )
        on_request: ImagesOnRequestStore = store
        on_request.create_collection("pics", space=SPACE, modality="image")
        vector = unit(5)
        payload = Payload(image=b"\x89PNG...", metadata={"n": 1})
        on_request.upsert("pics", [Item(id="a", vector=vector, payload=payload)], space=SPACE)
        [bare] = on_request.search("pics", vector, space=SPACE, include_images=False)
        assert (bare.id, bare.payload.image, bare.payload.metadata) == ("a", None, {"n": 1})
        [full] = on_request.search("pics", vector, space=SPACE)
        assert full.payload.image == b"\x89PNG..."


__all__ = [
    "BAD_NAMES",
    "OTHER_SPACE",
    "SPACE",
    "BrowsingContract",
    "ImagesOnRequestContract",
    "VectorStoreContract",
    "image_items",
    "text_items",
    "unit",
]
