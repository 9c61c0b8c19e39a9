"""Browsing a collection over HTTP: a page of its items, and an item's image.

``GET /v1/collections/{name}/items?offset=&limit=`` lists items without their images;
``GET /v1/collections/{name}/items/{id}/image?size=`` answers the stored image file as it was
added, or with ``size`` a thumbnail no larger than ``size`` pixels on either side (PNG, or
JPEG for opaque images). Both go through the store's optional ``list_items`` / ``get_item``
(:mod:`mmserve.stores.browse`): a store plugin without them answers 501.
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from PIL import Image, UnidentifiedImageError

from mmserve.errors import ItemNotFoundError, StoreError
from mmserve.http.runtime import ApiRuntime, request_id_of
from mmserve.http.schemas.collections import COLLECTION_NAME, ItemPage, ItemRecord
from mmserve.stores.async_store import image_work
from mmserve.stores.browse import MAX_PAGE, check_page
from mmserve.workflow.steps.collections import require_store

CollectionName = Annotated[
    str, Path(pattern=COLLECTION_NAME, description="Letters, digits, '_' and '-'.")
]
#: Thumbnail sizes the image route accepts (pixels, the longer side).
MIN_THUMBNAIL, MAX_THUMBNAIL = 16, 1024

_IMAGE_ANSWER: dict[int | str, Any] = {
    200: {
        "description": "The image file (the stored bytes, or a PNG/JPEG thumbnail with size).",
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def thumbnail(data: bytes, size: int | None) -> tuple[bytes, str]:
    """The image file ``data`` (its media type found), or a thumbnail of it (blocking)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = Image.MIME.get(image.format or "", "application/octet-stream")
            if size is None:
                return data, kind
            image.thumbnail((size, size))
            opaque = image.mode in ("RGB", "L", "CMYK", "YCbCr", "P") and (
                "transparency" not in image.info
            )
            out = io.BytesIO()
            if opaque:
                image.convert("RGB").save(out, format="JPEG", quality=85)
                return out.getvalue(), "image/jpeg"
            image.convert("RGBA").save(out, format="PNG")
            return out.getvalue(), "image/png"
    except (UnidentifiedImageError, OSError) as exc:
        raise StoreError("the stored image of this item cannot be read") from exc


def item_routes(runtime: ApiRuntime, responses: dict[int | str, Any]) -> APIRouter:
    """``/v1/collections/{name}/items`` (GET) and ``.../items/{id}/image`` over the store."""
    router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=responses)

    @router.get("/{name}/items", response_model=ItemPage)
    async def list_items(
        name: CollectionName,
        request: Request,
        offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
    ) -> ItemPage:
        """A page of a collection's items (texts and metadata; images by the image route)."""
        check_page(offset, limit)
        store = require_store(runtime.engine.store)
        collection = await store.get_collection(name)
        items = await store.list_items(name, offset=offset, limit=limit)
        image = collection.modality == "image"
        return ItemPage(
            collection=name,
            total=collection.count,
            offset=offset,
            limit=limit,
            items=[
                ItemRecord(
                    id=i.id,
                    text=i.payload.text,
                    has_image=image and i.payload.text is None,
                    metadata=i.payload.metadata,
                )
                for i in items
            ],
            request_id=request_id_of(request),
        )

    @router.get(
        "/{name}/items/{item_id:path}/image",
        response_class=Response,
        responses=_IMAGE_ANSWER,
    )
    async def item_image(
        name: CollectionName,
        item_id: str,
        size: Annotated[
            int | None,
            Query(
                ge=MIN_THUMBNAIL,
                le=MAX_THUMBNAIL,
                description="Answer a thumbnail at most this many pixels wide and high.",
            ),
        ] = None,
    ) -> Response:
        """An image item's image; 404 for an unknown id or a text item."""
        store = require_store(runtime.engine.store)
        item = await store.get_item(name, item_id)
        if item.payload.image is None:
            raise ItemNotFoundError(
                f"item {item_id!r} of collection {name!r} is a text item; it has no image",
                collection=name,
                item_id=item_id,
            )
        data, kind = await image_work(thumbnail, item.payload.image, size)
        return Response(content=data, media_type=kind, headers={"cache-control": "no-cache"})

    return router


__all__ = ["MAX_THUMBNAIL", "MIN_THUMBNAIL", "item_routes", "thumbnail"]
