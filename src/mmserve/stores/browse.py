"""Browsing a collection: a page of its items, and one item with its image.

``list_items`` and ``get_item`` are optional store methods (see
:class:`~mmserve.stores.contract.VectorStore`): the shipped stores have them, a store plugin
written before them may not. The functions here call them when present and otherwise raise
:class:`~mmserve.errors.StoreFeatureMissingError` (HTTP 501) naming the store, so an older
plugin keeps serving everything else. They block (store calls); the async layers run them off
the event loop.
"""

from __future__ import annotations

from typing import Any

from mmserve.errors import InputError, StoreFeatureMissingError
from mmserve.stores.contract import StoredItem

#: The most items one page may hold.
MAX_PAGE = 200


def check_page(offset: int, limit: int) -> None:
    """Refuse a negative offset or a page size outside 1..MAX_PAGE."""
    if offset < 0:
        raise InputError(f"offset must be 0 or more, got {offset}", name="offset")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}, got {limit}", name="limit")


def _method(store: Any, operation: str) -> Any:
    method = getattr(store, operation, None)
    if method is None:
        raise StoreFeatureMissingError(
            f"the store plugin {type(store).__name__} cannot {operation.replace('_', ' ')} "
            f"(it has no {operation} method)",
            hint="upgrade the store plugin, or use the lancedb or memory store",
        )
    return method


def list_store_items(store: Any, name: str, *, offset: int, limit: int) -> list[StoredItem]:
    """A page of ``name``'s items, images left out (whatever the store returned)."""
    check_page(offset, limit)
    items: list[StoredItem] = _method(store, "list_items")(name, offset=offset, limit=limit)
    return [
        item.model_copy(update={"payload": item.payload.model_copy(update={"image": None})})
        if item.payload.image is not None
        else item
        for item in items
    ]


def get_store_item(store: Any, name: str, item_id: str) -> StoredItem:
    """One item of ``name`` with its image; ItemNotFoundError for an unknown id."""
    item: StoredItem = _method(store, "get_item")(name, item_id)
    return item


__all__ = ["MAX_PAGE", "check_page", "get_store_item", "list_store_items"]
