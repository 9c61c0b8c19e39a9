"""The store as the engine's steps and the HTTP routes see it: every call awaitable.

Store plugins implement the synchronous :class:`~mmserve.stores.contract.VectorStore` protocol
(their calls may block on disk or object storage). :func:`as_async_store` wraps such a store in
an :class:`AsyncStore` that runs each call on a small bounded thread pool of its own, so a slow
store neither blocks the event loop nor starves the default pool (image decoding, health).
A store that is natively asynchronous (the served :class:`~mmserve.serve.store_server.StoreClient`,
whose calls go to the store replica and can be cancelled there) declares ``asynchronous = True``
and is used as it is.

Image bytes are fetched only when asked: ``search(..., include_images=False)`` is passed to a
store whose ``search`` accepts ``include_images`` (the shipped ones skip reading the image
column); for any other store plugin the images are dropped from its answer.

Blocking image work of the steps (decoding, hashing, encoding) goes to :func:`image_work`, a
bounded pool of its own, so one big request cannot occupy the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, runtime_checkable

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores.browse import get_store_item, list_store_items
from mmserve.stores.contract import (
    Collection,
    Item,
    Match,
    Modality,
    StoredItem,
    UpsertResult,
    Vector,
)

T = TypeVar("T")

#: Threads for blocking store calls (of local stores) per process.
STORE_THREADS = 8
#: Threads for image decoding, hashing and encoding per process (CPU-bound work).
IMAGE_THREADS = max(2, min(8, os.cpu_count() or 2))

_pools: dict[str, ThreadPoolExecutor] = {}


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    pool = _pools.get(name)
    if pool is None:
        pool = _pools.setdefault(
            name, ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"mmserve-{name}")
        )
    return pool


async def _offload(pool: ThreadPoolExecutor, func: Callable[..., T], *args: Any, **kw: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, functools.partial(func, *args, **kw))


async def image_work(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking image work (decode, hash, encode) on the bounded image pool."""
    return await _offload(_pool("image", IMAGE_THREADS), func, *args, **kwargs)


@runtime_checkable
class AsyncVectorStore(Protocol):
    """The :class:`~mmserve.stores.contract.VectorStore` calls, awaitable."""

    asynchronous: bool

    async def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection: ...

    async def get_collection(self, name: str) -> Collection: ...

    async def list_collections(self) -> list[Collection]: ...

    async def drop_collection(self, name: str) -> None: ...

    async def upsert(
        self, name: str, items: Sequence[Item], *, space: EmbeddingSpace
    ) -> UpsertResult: ...

    async def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]: ...

    async def search(
        self,
        name: str,
        vector: Vector,
        *,
        space: EmbeddingSpace,
        top_k: int = 5,
        include_images: bool = True,
    ) -> list[Match]: ...

    async def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        """A page of items without images (501 for a store plugin that cannot list)."""
        ...

    async def get_item(self, name: str, item_id: str) -> StoredItem: ...

    async def optimize(self, name: str) -> None: ...


def accepts_include_images(store: Any) -> bool:
    """Whether ``store.search`` takes ``include_images`` (third-party stores may not)."""
    try:
        return "include_images" in inspect.signature(store.search).parameters
    except (TypeError, ValueError):
        return False


def without_images(matches: list[Match]) -> list[Match]:
    return [
        m.model_copy(update={"payload": m.payload.model_copy(update={"image": None})})
        if m.payload.image is not None
        else m
        for m in matches
    ]


def search_store(
    store: Any,
    takes_include_images: bool,
    name: str,
    vector: Vector,
    *,
    space: EmbeddingSpace,
    top_k: int,
    include_images: bool,
) -> list[Match]:
    """``store.search`` (blocking), leaving images out as asked even when the store's
    ``search`` has no ``include_images`` (``takes_include_images``: see
    :func:`accepts_include_images`)."""
    if takes_include_images:
        found: list[Match] = store.search(
            name, vector, space=space, top_k=top_k, include_images=include_images
        )
        return found
    matches: list[Match] = store.search(name, vector, space=space, top_k=top_k)
    return matches if include_images else without_images(matches)


class AsyncStore:
    """A synchronous store plugin behind awaitable calls on a bounded thread pool."""

    asynchronous = True

    def __init__(self, store: Any) -> None:
        self.store = store
        self._include_images = accepts_include_images(store)

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await _offload(_pool("store", STORE_THREADS), func, *args, **kwargs)

    async def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        return await self._call(
            self.store.create_collection, name, space=space, modality=modality, exist_ok=exist_ok
        )

    async def get_collection(self, name: str) -> Collection:
        return await self._call(self.store.get_collection, name)

    async def list_collections(self) -> list[Collection]:
        return await self._call(self.store.list_collections)

    async def drop_collection(self, name: str) -> None:
        await self._call(self.store.drop_collection, name)

    async def upsert(
        self, name: str, items: Sequence[Item], *, space: EmbeddingSpace
    ) -> UpsertResult:
        return await self._call(self.store.upsert, name, items, space=space)

    async def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        return await self._call(self.store.existing_ids, name, ids)

    async def search(
        self,
        name: str,
        vector: Vector,
        *,
        space: EmbeddingSpace,
        top_k: int = 5,
        include_images: bool = True,
    ) -> list[Match]:
        return await self._call(
            search_store,
            self.store,
            self._include_images,
            name,
            vector,
            space=space,
            top_k=top_k,
            include_images=include_images,
        )

    async def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        return await self._call(list_store_items, self.store, name, offset=offset, limit=limit)

    async def get_item(self, name: str, item_id: str) -> StoredItem:
        return await self._call(get_store_item, self.store, name, item_id)

    async def optimize(self, name: str) -> None:
        await self._call(self.store.optimize, name)


def as_async_store(store: Any) -> AsyncVectorStore:
    """``store`` itself when it is natively asynchronous, else an :class:`AsyncStore`."""
    if getattr(store, "asynchronous", False):
        return store  # type: ignore[no-any-return]
    return AsyncStore(store)


__all__ = [
    "IMAGE_THREADS",
    "STORE_THREADS",
    "AsyncStore",
    "AsyncVectorStore",
    "accepts_include_images",
    "as_async_store",
    "image_work",
    "search_store",
    "without_images",
]
