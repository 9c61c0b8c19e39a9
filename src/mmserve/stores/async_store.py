"""The store as the engine's steps and the HTTP routes see it: every call awaitable.

Store plugins implement the synchronous :class:`~mmserve.stores.contract.VectorStore` protocol
(their calls may block on disk or object storage). :func:`as_async_store` wraps such a store in
an :class:`AsyncStore` that runs each call on a small bounded thread pool of its own, so a slow
store neither blocks the event loop nor starves the default pool (image decoding, health).
A store that is natively asynchronous (the served :class:`~mmserve.serve.store_server.StoreClient`,
whose calls go to the store replica and can be cancelled there) is an :class:`AwaitableStore`
and is used as it is. Both derive their methods from :data:`~mmserve.stores.calls.STORE_CALLS`.

Image bytes are fetched only when asked: ``search(..., include_images=False)`` is passed to a
store that declares ``images_on_request`` (the shipped ones skip reading the image column);
for any other store plugin the images are dropped from its answer
(:func:`~mmserve.stores.calls.search_store`).

Blocking image work of the steps (decoding, hashing, encoding) goes to :func:`image_work`, a
bounded pool of its own, so one big request cannot occupy the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from mmserve.models.spec import EmbeddingSpace
from mmserve.stores.calls import StoreCall, StoreCalls, invoke, search_store, without_images
from mmserve.stores.contract import (
    Collection,
    Item,
    Match,
    Modality,
    StoredItem,
    UpsertResult,
    Vector,
    VectorStore,
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
    """The :class:`~mmserve.stores.contract.VectorStore` calls, awaitable, as steps and routes
    type them: the typed view of :data:`~mmserve.stores.calls.STORE_CALLS` (the optional
    ``list_items`` / ``get_item`` raise StoreFeatureMissingError, HTTP 501, for a store plugin
    that cannot browse)."""

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

    async def list_items(
        self, name: str, *, offset: int = 0, limit: int = 50
    ) -> list[StoredItem]: ...

    async def get_item(self, name: str, item_id: str) -> StoredItem: ...

    async def optimize(self, name: str) -> None: ...


class AwaitableStore(StoreCalls):
    """A natively asynchronous store: its :data:`~mmserve.stores.calls.STORE_CALLS` methods
    answer what the store answers (an :class:`AsyncVectorStore`)."""


class AsyncStore(AwaitableStore):
    """A synchronous store plugin behind awaitable calls on a bounded thread pool."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    async def _dispatch(
        self, call: StoreCall, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return await _offload(
            _pool("store", STORE_THREADS), invoke, self.store, call, *args, **kwargs
        )


def as_async_store(store: Any) -> AsyncVectorStore:
    """``store`` itself when it is natively asynchronous, else an :class:`AsyncStore`."""
    if isinstance(store, AwaitableStore):
        return cast(AsyncVectorStore, store)
    return cast(AsyncVectorStore, AsyncStore(store))


__all__ = [
    "IMAGE_THREADS",
    "STORE_THREADS",
    "AsyncStore",
    "AsyncVectorStore",
    "AwaitableStore",
    "as_async_store",
    "image_work",
    "search_store",
    "without_images",
]
