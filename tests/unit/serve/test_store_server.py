"""The store deployment's class in process (no Ray): maintenance and caller mistakes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from handle_support import Pending
from ray import serve
from ray.exceptions import ActorDiedError

from mmserve.errors import CollectionNotFoundError, ServiceUnavailableError
from mmserve.models.spec import EmbeddingSpace
from mmserve.registry import registry
from mmserve.serve import replica_retry
from mmserve.serve.store_server import OPTIMIZE_EVERY, Refused, StoreClient, StoreServer
from mmserve.stores import Collection, Item, MemoryStore, Payload, UpsertResult
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


def test_background_optimize_prunes_old_versions(tmp_path: Path) -> None:
    writes = OPTIMIZE_EVERY + 1
    vectors = np.random.default_rng(1).standard_normal((writes, SPACE.dim)).astype(np.float32)

    async def ingest() -> None:
        server = StoreServer("lancedb", str(tmp_path), {"keep_versions_s": 0.001})
        await server.create_collection("notes", space=SPACE, modality="text")
        for n, vector in enumerate(vectors):
            item = Item(id=f"t{n}", vector=vector, payload=Payload(text=f"note {n}"))
            await server.upsert("notes", [item], space=SPACE)
        await server.maintenance_done()

    asyncio.run(ingest())
    table, _ = LanceDBStore(str(tmp_path))._open("notes")
    # one version per write without pruning (34 here); the compaction's own commit and the
    # write after it are what is left
    assert len(table.list_versions()) <= 3
    assert table.count_rows() == writes


def test_an_unknown_collection_is_answered_as_a_value_not_raised(tmp_path: Path) -> None:
    # Raised in the replica, Serve would log a traceback for every caller's 404.
    server = StoreServer("memory", str(tmp_path), {})
    answer = asyncio.run(server.get_collection("nope"))
    assert isinstance(answer, Refused) and isinstance(answer.error, CollectionNotFoundError)


class GatedStore(MemoryStore):
    """A memory store whose write of the item ``first`` waits until the test releases it."""

    entered = threading.Event()
    release = threading.Event()

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        if items[0].id == "first":
            self.entered.set()
            self.release.wait(timeout=60)
        return super().upsert(name, items, space=space)


def _item(item_id: str) -> Item:
    return Item(id=item_id, vector=np.ones(SPACE.dim), payload=Payload(text=item_id))


def test_a_cancelled_store_call_waiting_in_the_replica_never_commits() -> None:
    # Serve's local testing mode: the real handle and replica class, in this process.
    if "gated_test_store" not in registry.names("store"):
        registry.register("store", "gated_test_store", GatedStore)
    app = serve.deployment(StoreServer, name="gated_store").bind("gated_test_store", "", {})
    client = StoreClient(serve.run(app, name="gated", _local_testing_mode=True))

    async def scenario() -> set[str]:
        await client.create_collection("c", space=SPACE, modality="text")
        first = asyncio.create_task(client.upsert("c", [_item("first")], space=SPACE))
        await asyncio.to_thread(GatedStore.entered.wait, 60)  # it holds the write lock now
        second = asyncio.create_task(client.upsert("c", [_item("second")], space=SPACE))
        await asyncio.sleep(0)  # let it be sent
        second.cancel()  # a deadline, or the client went away
        with pytest.raises(asyncio.CancelledError):
            await second
        GatedStore.release.set()
        assert (await first).inserted == 1
        return await client.existing_ids("c", ["first", "second"])

    assert asyncio.run(scenario()) == {"first"}


class _DyingReplicaHandle:
    """A store deployment's handle over a real :class:`StoreServer` (LanceDB) whose replica
    dies once, after committing the ``dies_after`` call and before answering it, as a
    SIGKILLed store replica does; later calls reach the replacement (the same store)."""

    def __init__(self, server: StoreServer, dies_after: str) -> None:
        self._server, self._dies_after = server, dies_after
        self.sent: list[str] = []

    def options(self, *, method_name: str) -> _DyingReplicaHandle:
        self._method = method_name
        return self

    def remote(self, *args: object, **kwargs: object) -> Pending:
        method = self._method
        self.sent.append(method)

        async def answer() -> object:
            result = await getattr(self._server, method)(*args, **kwargs)
            if method == self._dies_after and self.sent.count(method) == 1:
                raise ActorDiedError()
            return result

        return Pending(answer())


@pytest.mark.parametrize("method", ["upsert", "create_collection"])
def test_a_write_whose_store_replica_died_is_sent_again_and_applied_once(
    tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replica_retry, "BACKOFF_S", 0.0)
    handle = _DyingReplicaHandle(StoreServer("lancedb", str(tmp_path), {}), dies_after=method)
    client = StoreClient(cast(Any, handle))

    async def scenario() -> tuple[UpsertResult, Collection]:
        await client.create_collection("c", space=SPACE, modality="text")
        result = await client.upsert("c", [_item("a"), _item("b")], space=SPACE)
        return result, await client.get_collection("c")

    result, collection = asyncio.run(scenario())
    assert handle.sent.count(method) == 2  # the answer was lost, so it was sent again
    assert collection.count == 2  # and applied once: no duplicate rows
    assert result.inserted + result.updated == 2


def test_dropping_a_collection_is_not_sent_again(tmp_path: Path) -> None:
    handle = _DyingReplicaHandle(StoreServer("memory", str(tmp_path), {}), "drop_collection")
    client = StoreClient(cast(Any, handle))

    async def scenario() -> None:
        await client.create_collection("c", space=SPACE, modality="text")
        await client.drop_collection("c")

    with pytest.raises(ServiceUnavailableError, match="the store is unavailable"):
        asyncio.run(scenario())
    assert handle.sent.count("drop_collection") == 1
