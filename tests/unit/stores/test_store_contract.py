"""The VectorStore contract, checked on every built-in store."""

from __future__ import annotations

import numpy as np
import pytest

from mmserve.errors import (
    CollectionNotFoundError,
    EmbeddingSpaceMismatchError,
    InputError,
    StoreError,
)
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Payload, VectorStore, content_id

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="fake", model_id="fake://a", dim=8)
OTHER_SPACE = EmbeddingSpace(backend="fake", model_id="fake://b", dim=8)


def unit(seed: int, dim: int = 8) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _items(n: int, start: int = 0) -> list[Item]:
    return [
        Item(
            id=content_id(text=f"text {i}"),
            vector=unit(i),
            payload=Payload(text=f"text {i}", metadata={"n": i}),
        )
        for i in range(start, start + n)
    ]


def test_create_list_get_drop(store: VectorStore) -> None:
    created = store.create_collection("notes", space=SPACE, modality="text")
    assert (created.name, created.space, created.modality, created.count) == (
        "notes",
        SPACE,
        "text",
        0,
    )
    store.upsert("notes", _items(3), space=SPACE)
    assert [(c.name, c.count) for c in store.list_collections()] == [("notes", 3)]
    store.drop_collection("notes")
    assert store.list_collections() == []
    with pytest.raises(CollectionNotFoundError):
        store.get_collection("notes")


def test_unknown_collection_lists_known(store: VectorStore) -> None:
    store.create_collection("alpha", space=SPACE, modality="text")
    with pytest.raises(CollectionNotFoundError, match="alpha") as info:
        store.search("beta", unit(0), space=SPACE)
    assert "beta" in str(info.value)


def test_upsert_is_idempotent_by_id(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    first = store.upsert("notes", _items(5), space=SPACE)
    again = store.upsert("notes", _items(5), space=SPACE)
    assert (first.inserted, first.updated) == (5, 0)
    assert (again.inserted, again.updated) == (0, 5)
    assert store.get_collection("notes").count == 5


def test_upsert_replaces_payload_of_same_id(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    store.upsert("notes", [Item(id="x", vector=unit(1), payload=Payload(text="old"))], space=SPACE)
    store.upsert("notes", [Item(id="x", vector=unit(2), payload=Payload(text="new"))], space=SPACE)
    [match] = store.search("notes", unit(2), space=SPACE, top_k=1)
    assert (match.id, match.payload.text) == ("x", "new")
    assert match.score == pytest.approx(1.0, abs=1e-5)


def test_search_ranks_by_cosine_similarity(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    items = _items(20)
    store.upsert("notes", items, space=SPACE)
    query = unit(7) + 0.1 * unit(100)
    matches = store.search("notes", query, space=SPACE, top_k=4)
    expected = sorted(items, key=lambda it: -float(it.vector @ (query / np.linalg.norm(query))))
    assert [m.id for m in matches] == [it.id for it in expected[:4]]
    assert matches[0].payload.text == "text 7"
    assert matches[0].payload.metadata == {"n": 7}
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert -1.0 - 1e-5 <= scores[-1] <= scores[0] <= 1.0 + 1e-5


def test_search_of_empty_collection_is_empty(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    assert store.search("notes", unit(0), space=SPACE) == []


def test_other_space_is_refused_naming_both(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    store.upsert("notes", _items(2), space=SPACE)
    with pytest.raises(EmbeddingSpaceMismatchError) as info:
        store.search("notes", unit(0), space=OTHER_SPACE)
    assert str(SPACE) in str(info.value) and str(OTHER_SPACE) in str(info.value)
    with pytest.raises(EmbeddingSpaceMismatchError):
        store.upsert("notes", _items(1), space=OTHER_SPACE)


def test_recreating_with_other_space_or_modality_is_refused(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    assert store.create_collection("notes", space=SPACE, modality="text").name == "notes"
    with pytest.raises(EmbeddingSpaceMismatchError):
        store.create_collection("notes", space=OTHER_SPACE, modality="text")
    with pytest.raises(StoreError, match="holds text items"):
        store.create_collection("notes", space=SPACE, modality="image")
    with pytest.raises(StoreError, match="already exists"):
        store.create_collection("notes", space=SPACE, modality="text", exist_ok=False)


@pytest.mark.parametrize("name", ["", "1abc", "a b", "../x", "a'b", "x" * 200])
def test_bad_collection_names_are_refused(store: VectorStore, name: str) -> None:
    with pytest.raises(InputError, match="invalid collection name"):
        store.create_collection(name, space=SPACE, modality="text")


def test_wrong_dimension_is_refused(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    with pytest.raises(InputError, match="dimension 3"):
        store.search("notes", np.ones(3, dtype=np.float32), space=SPACE)


def test_top_k_bounds(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    with pytest.raises(InputError, match="top_k"):
        store.search("notes", unit(0), space=SPACE, top_k=0)


def test_existing_ids_handles_quotes_and_missing(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    store.upsert(
        "notes", [Item(id="it's", vector=unit(1)), Item(id="b", vector=unit(2))], space=SPACE
    )
    assert store.existing_ids("notes", ["it's", "nope", "b", "b"]) == {"it's", "b"}
    assert store.existing_ids("notes", []) == set()


def test_image_payload_round_trips(store: VectorStore) -> None:
    store.create_collection("pics", space=SPACE, modality="image")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    store.upsert(
        "pics",
        [Item(id="p", vector=unit(3), payload=Payload(image=png, metadata={"source": "a.png"}))],
        space=SPACE,
    )
    [match] = store.search("pics", unit(3), space=SPACE, top_k=1)
    assert match.payload.image == png
    assert match.payload.text is None
    assert match.payload.metadata == {"source": "a.png"}


def test_optimize_keeps_results(store: VectorStore) -> None:
    store.create_collection("notes", space=SPACE, modality="text")
    for start in range(0, 30, 10):
        store.upsert("notes", _items(10, start), space=SPACE)
    store.optimize("notes")
    assert store.get_collection("notes").count == 30
    assert store.search("notes", unit(25), space=SPACE, top_k=1)[0].payload.text == "text 25"
