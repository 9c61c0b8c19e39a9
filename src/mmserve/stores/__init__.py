"""Vector stores (``store`` plugins): ``lancedb`` (default, persistent) and ``memory`` (tests).

Importing this package registers both; ``lancedb`` by import path, so that listing plugins
does not import LanceDB and pyarrow. Another engine (e.g. a vector database server for a
cluster) is a plugin implementing :class:`~mmserve.stores.contract.VectorStore` (and declaring
the optional capabilities it has), registered with :func:`mmserve.registry.register_store` or
through the ``mmserve.plugins`` entry points, and selected with ``store: {kind: <name>}`` in
the app config; nothing else changes. :mod:`mmserve.testing.store_contract` holds the tests it
must pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mmserve.errors import StoreError
from mmserve.registry import Registry, registry
from mmserve.stores.contract import (
    BrowsableStore,
    Capability,
    Collection,
    ImagesOnRequestStore,
    Item,
    Match,
    Modality,
    Payload,
    StoredItem,
    UpsertResult,
    VectorStore,
    capabilities_of,
    content_id,
    image_content_id,
)
from mmserve.stores.memory import MemoryStore

if TYPE_CHECKING:
    from mmserve.config import AppConfig

registry.register("store", "memory", MemoryStore)
registry.register(
    "store",
    "lancedb",
    "mmserve.stores.lancedb_store:LanceDBStore",
    meta={"description": "LanceDB: embedded, persistent in a data folder, ANN index (default)."},
)


def open_store_at(
    kind: str,
    location: str = "",
    options: Mapping[str, Any] | None = None,
    *,
    registry: Registry = registry,
) -> VectorStore:
    """Open a store plugin by name at ``location`` (a folder or URI; ignored by ``memory``)."""
    store_class = registry.get("store", kind)
    try:
        store = store_class(location, dict(options or {}))
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(
            f"cannot open the {kind} store at {location!r}: {exc.strerror or exc}",
            hint="check that the store path in the config is writable",
        ) from exc
    try:
        capabilities_of(store)  # a wrong declaration fails when the store opens
    except StoreError:
        store.close()
        raise
    return store  # type: ignore[no-any-return]


def open_store(config: AppConfig, *, registry: Registry = registry) -> VectorStore:
    """The vector store the app config names (``store.kind`` at ``store.path``)."""
    return open_store_at(
        config.store.kind, config.store_location(), config.store.options, registry=registry
    )


__all__ = [
    "BrowsableStore",
    "Capability",
    "Collection",
    "ImagesOnRequestStore",
    "Item",
    "Match",
    "MemoryStore",
    "Modality",
    "Payload",
    "StoredItem",
    "UpsertResult",
    "VectorStore",
    "capabilities_of",
    "content_id",
    "image_content_id",
    "open_store",
    "open_store_at",
]
