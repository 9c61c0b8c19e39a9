"""``client.collections``: the retrieval index of a server (list, add, search).

Reached as an attribute of :class:`~mmserve.client.clients.Client` (and awaitable on
:class:`~mmserve.client.clients.AsyncClient`)::

    with Client(url) as client:
        client.collections.add("notes", texts=["a red car", "a blue boat"])
        client.collections.add("photos", images=["cat.jpg", png_bytes], metadata={"album": "x"})
        for match in client.collections.search("notes", text="red", top_k=3):
            print(match["id"], match["score"], match["text"])
        client.collections.list()
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx

from mmserve.client.requests import add_payload, search_payload

SyncRequest = Callable[..., httpx.Response]
AsyncRequest = Callable[..., Awaitable[httpx.Response]]

#: Where a search reads: ``"default"`` (the store's readers, when it has any) or ``"strong"``
#: (the writer, which has every acknowledged add: read-your-writes; see docs/cluster.md).
Consistency = Literal["default", "strong"]


def consistency_headers(consistency: Consistency) -> dict[str, str]:
    """The request header asking for ``consistency`` (none for the default)."""
    return {} if consistency == "default" else {"x-mmserve-consistency": consistency}


class Collections:
    """The collection endpoints, synchronously."""

    def __init__(self, request: SyncRequest) -> None:
        self._request = request

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every collection: name, modality, count and embedding space."""
        found: builtins.list[dict[str, Any]] = self._request("GET", "/v1/collections").json()[
            "collections"
        ]
        return found

    def get(self, name: str) -> dict[str, Any]:
        """One collection (raises :class:`~mmserve.client.errors.ApiNotFoundError` if unknown)."""
        body: dict[str, Any] = self._request("GET", f"/v1/collections/{name}").json()
        return body

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
        payload = add_payload(
            items=items, texts=texts, images=images, ids=ids, metadata=metadata, model=model
        )
        response = self._request("POST", f"/v1/collections/{name}/items", json=payload)
        body: dict[str, Any] = response.json()
        return body

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
        payload = search_payload(
            text=text, image=image, top_k=top_k, model=model, include_images=include_images
        )
        response = self._request(
            "POST",
            f"/v1/collections/{name}/search",
            json=payload,
            headers=consistency_headers(consistency),
        )
        matches: builtins.list[dict[str, Any]] = response.json()["matches"]
        return matches


class AsyncCollections:
    """The collection endpoints, awaitable (the same methods as :class:`Collections`)."""

    def __init__(self, request: AsyncRequest) -> None:
        self._request = request

    async def list(self) -> builtins.list[dict[str, Any]]:
        response = await self._request("GET", "/v1/collections")
        found: builtins.list[dict[str, Any]] = response.json()["collections"]
        return found

    async def get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request("GET", f"/v1/collections/{name}")).json()
        return body

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
        payload = add_payload(
            items=items, texts=texts, images=images, ids=ids, metadata=metadata, model=model
        )
        response = await self._request("POST", f"/v1/collections/{name}/items", json=payload)
        body: dict[str, Any] = response.json()
        return body

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
        payload = search_payload(
            text=text, image=image, top_k=top_k, model=model, include_images=include_images
        )
        response = await self._request(
            "POST",
            f"/v1/collections/{name}/search",
            json=payload,
            headers=consistency_headers(consistency),
        )
        matches: builtins.list[dict[str, Any]] = response.json()["matches"]
        return matches


__all__ = ["AsyncCollections", "Collections"]
