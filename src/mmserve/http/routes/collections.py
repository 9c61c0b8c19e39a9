"""The collection endpoints: list collections, add items, search, drop a collection.

They reuse the ``index`` and ``retrieve`` steps' operations
(:func:`~mmserve.workflow.steps.index.index_documents`,
:func:`~mmserve.workflow.steps.retrieve.search_collection`) over the engine's gateway and
store, so a collection filled over HTTP is the one workflows search, and the other way round.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from mmserve.errors import InputError
from mmserve.http.limits import (
    check_items,
    check_pixel_budget,
    check_text,
    decode_pending,
    load_image,
    pending_image,
)
from mmserve.http.run_request import TIMEOUT_PARAMETER, deadline_s
from mmserve.http.runtime import ApiRuntime, request_id_of, within
from mmserve.http.schemas.collections import (
    COLLECTION_NAME,
    AddItemsRequest,
    AddItemsResponse,
    CollectionInfo,
    CollectionList,
    DroppedCollection,
    NewItem,
    SearchMatch,
    SearchPayload,
    SearchRequest,
    SearchResponse,
    SpaceInfo,
)
from mmserve.stores.contract import Collection, Match
from mmserve.workflow.steps.collections import require_store
from mmserve.workflow.steps.index import Document, index_documents
from mmserve.workflow.steps.retrieve import search_collection

_DEADLINE: dict[str, Any] = {"parameters": [TIMEOUT_PARAMETER]}

CollectionName = Annotated[
    str, Path(pattern=COLLECTION_NAME, description="Letters, digits, '_' and '-'.")
]


def _info(collection: Collection) -> CollectionInfo:
    space = collection.space
    return CollectionInfo(
        name=collection.name,
        modality=collection.modality,
        count=collection.count,
        space=SpaceInfo(backend=space.backend, model_id=space.model_id, dim=space.dim),
    )


def _documents(items: list[NewItem], runtime: ApiRuntime) -> list[Document]:
    """The items as documents, every text and image checked against the limits, and the
    images' headers and pixel budget before any is decoded (blocking)."""
    limits = runtime.config.server.limits
    pending = {
        n: pending_image(item.image, name=f"items[{n}].image", limits=limits)
        for n, item in enumerate(items)
        if item.text is None
    }
    if pending:
        check_pixel_budget(list(pending.values()), limits)
    documents = []
    for n, item in enumerate(items):
        metadata = dict(item.metadata)
        if item.text is not None:
            text = check_text(item.text, name=f"items[{n}].text", limits=limits)
            documents.append(Document(text=text, id=item.id, metadata=metadata))
            continue
        image = decode_pending(pending[n], limits)
        documents.append(
            Document(image=image, image_bytes=pending[n].data, id=item.id, metadata=metadata)
        )
    return documents


def _match(match: Match, include_images: bool) -> SearchMatch:
    image = match.payload.image
    return SearchMatch(
        id=match.id,
        score=match.score,
        payload=SearchPayload(
            text=match.payload.text,
            image=base64.b64encode(image).decode("ascii") if image and include_images else None,
            metadata=match.payload.metadata,
        ),
    )


def collection_routes(runtime: ApiRuntime, responses: dict[int | str, Any]) -> APIRouter:
    """The ``/v1/collections`` routes over ``runtime``'s gateway and store."""
    router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=responses)
    server = runtime.config.server

    @router.get("", response_model=CollectionList)
    async def list_collections() -> CollectionList:
        """Every collection with its modality, size and embedding space."""
        store = require_store(runtime.engine.store)
        found = await store.list_collections()
        return CollectionList(collections=[_info(c) for c in sorted(found, key=lambda c: c.name)])

    @router.get("/{name}", response_model=CollectionInfo)
    async def get_collection(name: CollectionName) -> CollectionInfo:
        """One collection; 404 when it does not exist."""
        store = require_store(runtime.engine.store)
        return _info(await store.get_collection(name))

    @router.delete("/{name}", response_model=DroppedCollection)
    async def drop_collection(name: CollectionName, request: Request) -> DroppedCollection:
        """Delete the collection and every item in it; 404 when it does not exist."""
        store = require_store(runtime.engine.store)
        count = (await store.get_collection(name)).count
        await store.drop_collection(name)
        return DroppedCollection(collection=name, count=count, request_id=request_id_of(request))

    @router.post("/{name}/items", response_model=AddItemsResponse, openapi_extra=_DEADLINE)
    async def add_items(
        name: CollectionName, body: AddItemsRequest, request: Request
    ) -> AddItemsResponse:
        """Embed and add texts or images (created on first use; same id -> replaced)."""
        timeout_s = deadline_s(request, server)
        store = require_store(runtime.engine.store)
        check_items(body.items, name="items", limits=server.limits)
        ids = [item.id for item in body.items if item.id is not None]
        if len(set(ids)) != len(ids):
            raise InputError("items: the same id is given twice", name="items")
        documents = await asyncio.to_thread(_documents, body.items, runtime)
        gateway = runtime.engine.gateway
        report = await within(
            index_documents(gateway, store, name, documents, model=body.model),
            timeout_s=timeout_s,
            doing=f"adding {len(documents)} items to {name!r}",
        )
        collection = await store.get_collection(name)
        return AddItemsResponse(
            collection=name,
            ids=report.ids,
            inserted=report.inserted,
            updated=report.updated,
            count=collection.count,
            request_id=request_id_of(request),
        )

    @router.post("/{name}/search", response_model=SearchResponse, openapi_extra=_DEADLINE)
    async def search(name: CollectionName, body: SearchRequest, request: Request) -> SearchResponse:
        """The items closest to a text or an image query, best first."""
        timeout_s = deadline_s(request, server)
        store = require_store(runtime.engine.store)
        limits = server.limits
        text = image = None
        if body.text is not None:
            text = check_text(body.text, name="text", limits=limits)
        else:
            image = await asyncio.to_thread(load_image, body.image, name="image", limits=limits)
        matches = await within(
            search_collection(
                runtime.engine.gateway,
                store,
                name,
                text=text,
                image=image,
                top_k=body.top_k,
                model=body.model,
                include_images=body.include_images,
            ),
            timeout_s=timeout_s,
            doing=f"searching {name!r}",
        )
        return SearchResponse(
            collection=name,
            matches=[_match(m, body.include_images) for m in matches],
            request_id=request_id_of(request),
        )

    return router


__all__ = ["collection_routes"]
