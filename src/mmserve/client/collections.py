"""``client.collections``: the retrieval index of a server (list, add, search).

Reached as an attribute of :class:`~mmserve.client.clients.Client` (and awaitable on
:class:`~mmserve.client.clients.AsyncClient`)::

    with Client(url) as client:
        client.collections.add("notes", texts=["a red car", "a blue boat"])
        client.collections.add("photos", images=["cat.jpg", png_bytes], metadata={"album": "x"})
        for match in client.collections.search("notes", text="red", top_k=3):
            print(match["id"], match["score"], match["text"])
        client.collections.list()

Each call is built once by :class:`~mmserve.client.requests.RequestBuilder`; the two classes
here only send it.
"""

from __future__ import annotations

import builtins
from typing import Any

from mmserve.client.requests import AsyncSend, Consistency, RequestBuilder, SyncSend


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


class AsyncCollections:
    """The collection endpoints, awaitable (the same methods as :class:`Collections`)."""

    def __init__(self, send: AsyncSend, calls: RequestBuilder) -> None:
        self._send, self._calls = send, calls

    async def list(self) -> builtins.list[dict[str, Any]]:
        return await self._send(self._calls.collections())

    async def get(self, name: str) -> dict[str, Any]:
        return await self._send(self._calls.collection(name))

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


__all__ = ["AsyncCollections", "Collections"]
