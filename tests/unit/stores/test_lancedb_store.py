"""What only the persistent LanceDB store does: survive reopening, build an ANN index."""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from mmserve.errors import CollectionNotFoundError, EmbeddingSpaceMismatchError, StoreError
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Payload, open_store_at
from mmserve.stores.lancedb_store import LanceDBStore

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=16)


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, SPACE.dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_collections_and_items_survive_reopening(tmp_path: Path) -> None:
    first = open_store_at("lancedb", str(tmp_path))
    first.create_collection("pics", space=SPACE, modality="image")
    vectors = _vectors(3)
    first.upsert(
        "pics",
        [
            Item(id=f"i{n}", vector=v, payload=Payload(image=b"img", metadata={"n": n}))
            for n, v in enumerate(vectors)
        ],
        space=SPACE,
    )
    first.close()

    again = open_store_at("lancedb", str(tmp_path))
    [collection] = again.list_collections()
    assert (collection.name, collection.space, collection.modality, collection.count) == (
        "pics",
        SPACE,
        "image",
        3,
    )
    [match] = again.search("pics", vectors[1], space=SPACE, top_k=1)
    assert (match.id, match.payload.metadata) == ("i1", {"n": 1})


def test_ann_index_is_built_by_optimize_and_keeps_recall(tmp_path: Path) -> None:
    store = LanceDBStore(str(tmp_path), {"index_min_rows": 500, "num_partitions": 4, "nprobes": 4})
    store.create_collection("big", space=SPACE, modality="text")
    vectors = _vectors(1200)
    items = [Item(id=f"v{n}", vector=v) for n, v in enumerate(vectors)]
    for start in range(0, len(items), 400):
        store.upsert("big", items[start : start + 400], space=SPACE)
    assert not store.has_index("big")
    store.optimize("big")
    assert store.has_index("big") and store.has_index("big", "id")
    # rows written after the index was built are found too (searched exactly)
    late = _vectors(1, seed=99)[0]
    store.upsert("big", [Item(id="late", vector=late)], space=SPACE)
    assert store.search("big", late, space=SPACE, top_k=1)[0].id == "late"
    assert store.existing_ids("big", ["late", "v7", "nope"]) == {"late", "v7"}
    hits = sum(
        store.search("big", vectors[n], space=SPACE, top_k=1)[0].id == f"v{n}"
        for n in range(0, 1200, 60)
    )
    assert hits >= 19  # refine_factor re-ranks exactly, so a stored vector finds itself


def test_bad_options_are_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="nprobes"):
        open_store_at("lancedb", str(tmp_path), {"nprobes": 0})
    with pytest.raises(StoreError, match="colour"):
        open_store_at("lancedb", str(tmp_path), {"colour": "red"})


def test_foreign_tables_are_not_taken_for_collections(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    db.create_table("foreign", schema=pa.schema([pa.field("x", pa.int64())]))
    store = open_store_at("lancedb", str(tmp_path))
    with pytest.raises(StoreError, match="not an mmserve collection"):
        store.get_collection("foreign")
    assert store.list_collections() == []


def test_hnsw_index_variant(tmp_path: Path) -> None:
    store = LanceDBStore(
        str(tmp_path), {"index_type": "ivf_hnsw_sq", "index_min_rows": 500, "num_partitions": 1}
    )
    store.create_collection("graph", space=SPACE, modality="text")
    vectors = _vectors(600, seed=3)
    store.upsert("graph", [Item(id=f"g{n}", vector=v) for n, v in enumerate(vectors)], space=SPACE)
    store.optimize("graph")
    assert store.has_index("graph")
    assert store.search("graph", vectors[42], space=SPACE, top_k=1)[0].id == "g42"


def test_a_collection_dropped_or_recreated_by_another_process_is_seen(tmp_path: Path) -> None:
    # Two store instances on one folder: the server's, and a CLI's beside it (`index drop`).
    server = open_store_at("lancedb", str(tmp_path))
    cli = open_store_at("lancedb", str(tmp_path))
    server.create_collection("pics", space=SPACE, modality="image")
    vectors = _vectors(2)
    item = Item(id="a", vector=vectors[0], payload=Payload(image=b"img"))
    server.upsert("pics", [item], space=SPACE)
    assert server.get_collection("pics").count == 1  # the server now holds a handle

    cli.drop_collection("pics")
    with pytest.raises(CollectionNotFoundError):
        server.get_collection("pics")
    with pytest.raises(CollectionNotFoundError):
        server.search("pics", vectors[0], space=SPACE)

    # re-created elsewhere with another encoder: the server reports and writes the new space
    other = EmbeddingSpace(backend="clip", model_id="tiny://other", dim=8)
    cli.create_collection("pics", space=other, modality="image")
    assert server.get_collection("pics").space == other
    new = Item(id="b", vector=np.ones(8, dtype=np.float32), payload=Payload(image=b"img"))
    assert server.upsert("pics", [new], space=other).inserted == 1
    assert cli.get_collection("pics").count == 1
    with pytest.raises(EmbeddingSpaceMismatchError):
        server.upsert("pics", [item], space=SPACE)
