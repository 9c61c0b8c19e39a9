"""The vector store when served: one writer deployment, and the client the engine uses.

Every ingress replica must see the same collections, and concurrent ingests must neither lose
nor duplicate items. The app therefore runs exactly one ``store`` replica that owns the
configured store (``store.kind`` at ``store.path``; on a cluster that path is a shared folder
or an object-storage URI, so the replica may run on any node). Writes are serialised there by
one lock; reads run concurrently. Ingress replicas reach it through :class:`StoreClient`,
which implements the :class:`~mmserve.stores.base.VectorStore` protocol over a handle, so
workflow steps cannot tell it from a local store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ray.serve.handle import DeploymentHandle

from mmserve.models.base import EmbeddingSpace
from mmserve.serving.handles import translate_error
from mmserve.stores.base import Collection, Item, Match, Modality, UpsertResult, Vector

T = TypeVar("T")

#: A store call that takes longer than this is reported as failed rather than hanging a step.
STORE_CALL_TIMEOUT_S = 300.0


class StoreServer:
    """The single replica owning the store (a Serve deployment class)."""

    def __init__(self, kind: str, location: str, options: dict[str, Any]) -> None:
        from mmserve.stores import open_store_at

        self._store = open_store_at(kind, location, options)
        self._write_lock = asyncio.Lock()

    async def _read(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(func, *args, **kwargs)

    async def _write(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # One write at a time: upserts by id then never race into duplicates or lost rows.
        async with self._write_lock:
            return await asyncio.to_thread(func, *args, **kwargs)

    async def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        return await self._write(
            self._store.create_collection, name, space=space, modality=modality, exist_ok=exist_ok
        )

    async def get_collection(self, name: str) -> Collection:
        return await self._read(self._store.get_collection, name)

    async def list_collections(self) -> list[Collection]:
        return await self._read(self._store.list_collections)

    async def drop_collection(self, name: str) -> None:
        await self._write(self._store.drop_collection, name)

    async def upsert(
        self, name: str, items: Sequence[Item], *, space: EmbeddingSpace
    ) -> UpsertResult:
        return await self._write(self._store.upsert, name, items, space=space)

    async def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        return await self._read(self._store.existing_ids, name, ids)

    async def search(
        self, name: str, vector: Vector, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        return await self._read(self._store.search, name, vector, space=space, top_k=top_k)

    async def optimize(self, name: str) -> None:
        await self._write(self._store.optimize, name)


class StoreClient:
    """A :class:`~mmserve.stores.base.VectorStore` backed by the store deployment.

    Its methods block like any store's, so callers run them off the event loop (workflow
    steps do); calling one on the event loop thread is refused by Serve.
    """

    def __init__(self, handle: DeploymentHandle[Any]) -> None:
        self._handle = handle

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        response = self._handle.options(method_name=method).remote(*args, **kwargs)
        try:
            return response.result(timeout_s=STORE_CALL_TIMEOUT_S)
        except Exception as exc:
            error = translate_error("the store", exc)
            raise error from (None if error is getattr(exc, "cause", None) else exc)

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        result: Collection = self._call(
            "create_collection", name, space=space, modality=modality, exist_ok=exist_ok
        )
        return result

    def get_collection(self, name: str) -> Collection:
        result: Collection = self._call("get_collection", name)
        return result

    def list_collections(self) -> list[Collection]:
        result: list[Collection] = self._call("list_collections")
        return result

    def drop_collection(self, name: str) -> None:
        self._call("drop_collection", name)

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        result: UpsertResult = self._call("upsert", name, list(items), space=space)
        return result

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        result: set[str] = self._call("existing_ids", name, list(ids))
        return result

    def search(
        self, name: str, vector: Vector, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        result: list[Match] = self._call("search", name, vector, space=space, top_k=top_k)
        return result

    def optimize(self, name: str) -> None:
        self._call("optimize", name)

    def close(self) -> None:
        """Nothing to release here: the store deployment owns the store."""


def store_args(kind: str, location: str, options: Mapping[str, Any]) -> tuple[Any, ...]:
    """Constructor arguments of :class:`StoreServer`."""
    return (kind, location, dict(options))


__all__ = ["STORE_CALL_TIMEOUT_S", "StoreClient", "StoreServer", "store_args"]
