"""How steps and routes reach a store: awaitable calls on a bounded pool, images on request."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores import Item, Payload, open_store_at
from mmserve.stores.async_store import AsyncStore, as_async_store
from mmserve.stores.contract import Match
from mmserve.stores.memory import MemoryStore

pytestmark = pytest.mark.unit

SPACE = EmbeddingSpace(backend="clip", model_id="tiny://clip", dim=4)
VECTOR = np.array([1, 0, 0, 0], dtype=np.float32)


@pytest.mark.parametrize("kind", ["memory", "lancedb"])
def test_shipped_stores_leave_image_bytes_out_unless_asked(kind: str, tmp_path: Path) -> None:
    store = open_store_at(kind, str(tmp_path))
    store.create_collection("pics", space=SPACE, modality="image")
    item = Item(id="a", vector=VECTOR, payload=Payload(image=b"\x89PNG...", metadata={"n": 1}))
    store.upsert("pics", [item], space=SPACE)
    [bare] = store.search("pics", VECTOR, space=SPACE, include_images=False)  # type: ignore[call-arg]
    assert (bare.id, bare.payload.image, bare.payload.metadata) == ("a", None, {"n": 1})
    [full] = store.search("pics", VECTOR, space=SPACE)
    assert full.payload.image == b"\x89PNG..."


class OldPluginStore(MemoryStore):
    """A third-party store written before ``include_images``: search has no such parameter."""

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
