"""The store deployment's class in process (no Ray): maintenance and caller mistakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from mmserve.errors import CollectionNotFoundError
from mmserve.models.base import EmbeddingSpace
from mmserve.serving.store import OPTIMIZE_EVERY, Refused, StoreServer
from mmserve.stores import Item, Payload
from mmserve.stores.lancedb_store import LanceDBStore

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=8)


def test_single_item_upserts_are_compacted_in_the_background(tmp_path: Path) -> None:
    writes = 3 * OPTIMIZE_EVERY + 5
    vectors = np.random.default_rng(0).standard_normal((writes, SPACE.dim)).astype(np.float32)

    async def ingest() -> int:
        server = StoreServer("lancedb", str(tmp_path), {})
        await server.create_collection("notes", space=SPACE, modality="text")
        for n, vector in enumerate(vectors):
            item = Item(id=f"t{n}", vector=vector, payload=Payload(text=f"note {n}"))
            await server.upsert("notes", [item], space=SPACE)
        await server.maintenance_done()
        return writes

    asyncio.run(ingest())
    store = LanceDBStore(str(tmp_path))
    assert store.get_collection("notes").count == writes
    table, _ = store._open("notes")
    # one data file per upsert without compaction; bounded by the compaction interval with it
    assert table.stats()["fragment_stats"]["num_fragments"] <= OPTIMIZE_EVERY


def test_an_unknown_collection_is_answered_as_a_value_not_raised(tmp_path: Path) -> None:
    # Raised in the replica, Serve would log a traceback for every caller's 404.
    server = StoreServer("memory", str(tmp_path), {})
    answer = asyncio.run(server.get_collection("nope"))
    assert isinstance(answer, Refused) and isinstance(answer.error, CollectionNotFoundError)
