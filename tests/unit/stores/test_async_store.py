"""How steps and routes reach a store: awaitable calls on a bounded pool, images on request."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import numpy as np
import pytest

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Capability, Item, Payload
from mmserve.stores.async_store import AsyncStore, as_async_store
from mmserve.stores.contract import Match
from mmserve.stores.memory import MemoryStore

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=4)
VECTOR = np.array([1, 0, 0, 0], dtype=np.float32)


class OldPluginStore(MemoryStore):
    """A third-party store written before ``include_images``: search has no such parameter,
    and the store does not declare ``images_on_request``."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({"browse"})
    threads: list[str] = []

    def search(  # type: ignore[override]
        self, name: str, vector: Any, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        self.threads.append(threading.current_thread().name)
        return super().search(name, vector, space=space, top_k=top_k)


def test_a_plugin_store_without_include_images_works_and_runs_off_the_loop() -> None:
    plugin = OldPluginStore("memory")
    plugin.create_collection("pics", space=SPACE, modality="image")
    plugin.upsert("pics", [Item(id="a", vector=VECTOR, payload=Payload(image=b"x"))], space=SPACE)
    store = as_async_store(plugin)
    assert isinstance(store, AsyncStore)

    async def both() -> tuple[list[Match], list[Match]]:
        bare = await store.search("pics", VECTOR, space=SPACE, include_images=False)
        return bare, await store.search("pics", VECTOR, space=SPACE)

    bare, full = asyncio.run(both())
    assert bare[0].payload.image is None and full[0].payload.image == b"x"
    assert [t.startswith("mmserve-store") for t in OldPluginStore.threads] == [True, True]
