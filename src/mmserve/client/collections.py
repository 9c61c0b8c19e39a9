"""``client.collections``: the retrieval index of a server (list, add, search, browse, drop).

Reached as an attribute of :class:`~mmserve.client.clients.Client` (and awaitable on
:class:`~mmserve.client.clients.AsyncClient`)::

    with Client(url) as client:
        client.collections.add("notes", texts=["a red car", "a blue boat"])
        client.collections.add("photos", images=["cat.jpg", png_bytes], metadata={"album": "x"})
        for match in client.collections.search("notes", text="red", top_k=3):
            print(match["id"], match["score"], match["payload"]["text"])
        client.collections.list()
        client.collections.drop("notes")  # the collection and every item in it
        page = client.collections.items("photos", offset=0, limit=50)  # ids, texts, metadata
        for item in page["items"]:
            if item["has_image"]:
                client.collections.image("photos", item["id"], size=128).save(f"{item['id']}.png")

``items`` pages through a collection (``page["total"]`` items in all, at most 200 a page);
``image`` answers an image item's stored image as a PIL image (a thumbnail with ``size``).
An unknown collection or item raises :class:`~mmserve.client.errors.ApiNotFoundError`, as
for every other method.

Each call is built once by :class:`~mmserve.client.requests.RequestBuilder`; the two classes
here only send it.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from mmserve.client.requests import AsyncSend, Consistency, RequestBuilder, SyncSend

if TYPE_CHECKING:
    from PIL.Image import Image

#: The size of a page of :meth:`Collections.items` unless told (the server's default).
DEFAULT_PAGE = 50


class Collections:
    """The collection endpoints, synchronously."""

    def __init__(self, send: SyncSend, calls: RequestBuilder) -> None:
        self._send, self._calls = send, calls

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every collection: name, modality, count and embedding space."""
        return self._send(self._calls.collections())

    def get(self, name: str) -> dict[str, Any]:
        """One collection (raises :class:`~mmserve.client.errors.ApiNotFoundError` if unknown)."""
        return self._send(self._calls.collection(name))

    def drop(self, name: str) -> dict[str, Any]:
        """Delete ``name`` and every item in it: ``{"collection", "count", "request_id"}``,
        ``count`` the items dropped (:class:`~mmserve.client.errors.ApiNotFoundError` if
        unknown)."""
        return self._send(self._calls.drop_collection(name))

    def add(
        self,
        name: str,
        *,
        texts: builtins.list[str] | None = None,
        images: builtins.list[Any] | None = None,
        items: builtins.list[dict[str, Any]] | None = None,
        ids: builtins.list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Add texts, images (paths, bytes or PIL images) or ready ``items`` dicts
        (``{"text"|"image", "id", "metadata"}``); returns ids, inserted, updated, count."""
        return self._send(
            self._calls.add_items(
                name,
                items=items,
                texts=texts,
                images=images,
                ids=ids,
                metadata=metadata,
                model=model,
            )
        )

    def search(
        self,
        name: str,
        *,
        text: str | None = None,
        image: Any = None,
        top_k: int = 5,
        model: str | None = None,
        include_images: bool = True,
        consistency: Consistency = "default",
    ) -> builtins.list[dict[str, Any]]:
        """The ``top_k`` matches of a text or image query, best first: each
        ``{"id", "score", "payload": {"text", "image" (base64), "metadata"}}``.
        ``consistency="strong"`` reads from the store's writer, so the search sees every add
        acknowledged before it even when the server's readers lag (``read_consistency_s``)."""
        return self._send(
            self._calls.search(
                name,
                consistency=consistency,
                text=text,
                image=image,
                top_k=top_k,
                model=model,
                include_images=include_images,
            )
        )

    def items(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
        consistency: Consistency = "default",
    ) -> dict[str, Any]:
        """A page of ``name``'s items, in the store's order, without their images:
        ``{"collection", "total", "offset", "limit", "items": [{"id", "text", "has_image",
        "metadata"}]}``; ``limit`` is 1 to 200 (the server refuses more). ``consistency``:
        as for :meth:`search`. Raises :class:`~mmserve.client.errors.ApiNotFoundError` for an
        unknown collection."""
        return self._send(
            self._calls.items(name, offset=offset, limit=limit, consistency=consistency)
        )

    def image(
        self,
        name: str,
        item_id: str,
        *,
        size: int | None = None,
        consistency: Consistency = "default",
    ) -> Image:
        """The image of item ``item_id`` of ``name`` as a PIL image: the file as it was
        added, or with ``size`` (16 to 1024) a thumbnail at most that many pixels wide and
        high. Raises :class:`~mmserve.client.errors.ApiNotFoundError` for an unknown
        collection or item, and for a text item."""
        return self._send(self._calls.item_image(name, item_id, size=size, consistency=consistency))


class AsyncCollections:
    """The collection endpoints, awaitable (the same methods as :class:`Collections`)."""

    def __init__(self, send: AsyncSend, calls: RequestBuilder) -> None:
        self._send, self._calls = send, calls

    async def list(self) -> builtins.list[dict[str, Any]]:
        return await self._send(self._calls.collections())

    async def get(self, name: str) -> dict[str, Any]:
        return await self._send(self._calls.collection(name))

    async def drop(self, name: str) -> dict[str, Any]:
        return await self._send(self._calls.drop_collection(name))

    async def add(
        self,
        name: str,
        *,
        texts: builtins.list[str] | None = None,
        images: builtins.list[Any] | None = None,
        items: builtins.list[dict[str, Any]] | None = None,
        ids: builtins.list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        return await self._send(
            self._calls.add_items(
                name,
                items=items,
                texts=texts,
                images=images,
                ids=ids,
                metadata=metadata,
                model=model,
            )
        )

    async def search(
        self,
        name: str,
        *,
        text: str | None = None,
        image: Any = None,
        top_k: int = 5,
        model: str | None = None,
        include_images: bool = True,
        consistency: Consistency = "default",
    ) -> builtins.list[dict[str, Any]]:
        return await self._send(
            self._calls.search(
                name,
                consistency=consistency,
                text=text,
                image=image,
                top_k=top_k,
                model=model,
                include_images=include_images,
            )
        )

    async def items(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
        consistency: Consistency = "default",
    ) -> dict[str, Any]:
        return await self._send(
            self._calls.items(name, offset=offset, limit=limit, consistency=consistency)
        )

    async def image(
        self,
        name: str,
        item_id: str,
        *,
        size: int | None = None,
        consistency: Consistency = "default",
    ) -> Image:
        return await self._send(
            self._calls.item_image(name, item_id, size=size, consistency=consistency)
        )


__all__ = ["DEFAULT_PAGE", "AsyncCollections", "Collections"]
