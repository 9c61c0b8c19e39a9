"""Browsing a collection: a page of its items, and one item with its image.

``list_items`` and ``get_item`` are the optional capability ``"browse"``
(:class:`~mmserve.stores.contract.BrowsableStore`): the shipped stores declare it, a store
plugin written before it may not. The functions here call them when the store declares it and
otherwise raise :class:`~mmserve.errors.StoreFeatureMissingError` (HTTP 501) naming the store,
so an older plugin keeps serving everything else. They block (store calls); the async layers
run them off the event loop.
"""

from __future__ import annotations

from mmserve.errors import InputError, StoreFeatureMissingError
from mmserve.stores.contract import BrowsableStore, StoredItem, VectorStore, can_browse

#: The most items one page may hold.
MAX_PAGE = 200


def check_page(offset: int, limit: int) -> None:
    """Refuse a negative offset or a page size outside 1..MAX_PAGE."""
    if offset < 0:
        raise InputError(f"offset must be 0 or more, got {offset}", name="offset")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}, got {limit}", name="limit")


def _browsable(store: VectorStore, operation: str) -> BrowsableStore:
    if not can_browse(store):
        raise StoreFeatureMissingError(
            f"the store plugin {type(store).__name__} cannot {operation.replace('_', ' ')} "
            "(it does not declare the capability 'browse')",
            hint="upgrade the store plugin, or use the lancedb or memory store",
        )
    return store


def list_store_items(
    store: VectorStore, name: str, *, offset: int = 0, limit: int = 50
) -> list[StoredItem]:
    """A page of ``name``'s items, images left out (whatever the store returned)."""
    check_page(offset, limit)
    items = _browsable(store, "list_items").list_items(name, offset=offset, limit=limit)
    return [
        item.model_copy(update={"payload": item.payload.model_copy(update={"image": None})})
        if item.payload.image is not None
        else item
        for item in items
    ]


def get_store_item(store: VectorStore, name: str, item_id: str) -> StoredItem:
    """One item of ``name`` with its image; ItemNotFoundError for an unknown id."""
    return _browsable(store, "get_item").get_item(name, item_id)


__all__ = ["MAX_PAGE", "check_page", "get_store_item", "list_store_items"]
