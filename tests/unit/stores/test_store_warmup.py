"""Store warm-up before ready (issue 16): one read per collection, never a write, never a
failed start for one damaged collection."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmserve.models.spec import EmbeddingSpace
from mmserve.serve.store_server import StoreServer
from mmserve.stores import Item, MemoryStore, Payload, VectorStore
from mmserve.stores.lancedb_store import LanceDBStore
from mmserve.stores.warmup import warm_store

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=8)


def _fill(store: VectorStore, names: list[str]) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        store.create_collection(name, space=SPACE, modality="text")
        items = [
            Item(
                id=f"{name}-{n}",
                vector=rng.standard_normal(SPACE.dim).astype(np.float32),
                payload=Payload(text=f"{name} {n}"),
            )
            for n in range(3)
        ]
        store.upsert(name, items, space=SPACE)


class CountingStore(MemoryStore):
    """A memory store that counts searches per collection and can fail one collection."""

    def __init__(self, broken: str | None = None) -> None:
        super().__init__()
        self.searched: list[str] = []
        self.broken = broken

    def search(self, name: str, vector: Any, **kwargs: Any) -> Any:
        self.searched.append(name)
        if name == self.broken:
            raise RuntimeError(f"collection {name} is damaged")
        return super().search(name, vector, **kwargs)


def test_every_collection_is_searched_once_and_nothing_is_written() -> None:
    store = CountingStore()
    _fill(store, ["b", "a", "c"])
    before = {c.name: c.count for c in store.list_collections()}
    seconds = warm_store(store)
    assert seconds >= 0
    assert store.searched == ["a", "b", "c"]
    assert {c.name: c.count for c in store.list_collections()} == before


def test_a_damaged_collection_is_logged_and_the_others_are_warmed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = CountingStore(broken="b")
    _fill(store, ["a", "b", "c"])
    with caplog.at_level(logging.WARNING):
        warm_store(store)
    assert store.searched == ["a", "b", "c"]
    assert "'b' failed (collection b is damaged); skipped" in caplog.text


def test_only_the_first_collections_are_warmed_when_there_are_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = CountingStore()
    _fill(store, ["a", "b", "c", "d"])
    with caplog.at_level(logging.INFO):
        warm_store(store, max_collections=2)
    assert store.searched == ["a", "b"]
    assert "2 collection(s)" in caplog.text and "(2 more warm on first use)" in caplog.text


def test_an_empty_store_warms_in_no_time() -> None:
    store = CountingStore()
    warm_store(store)
    assert store.searched == []


def test_the_store_replica_opens_its_collections_before_it_is_ready(tmp_path: Path) -> None:
    _fill(LanceDBStore(str(tmp_path)), ["images", "notes"])
    server = StoreServer("lancedb", str(tmp_path), {})
    opened = server._store  # the LanceDB store the replica owns
    assert isinstance(opened, LanceDBStore)
    assert sorted(opened._tables) == ["images", "notes"]
    assert server.warmup_s is not None and server.warmup_s >= 0
    # the warmed replica answers the same as a cold store
    probe = np.ones(SPACE.dim, dtype=np.float32)
    matches = asyncio.run(server.search("notes", probe, space=SPACE, top_k=2))
    cold = LanceDBStore(str(tmp_path)).search("notes", probe, space=SPACE, top_k=2)
    assert [m.id for m in matches] == [m.id for m in cold]  # type: ignore[union-attr]
