"""An in-process vector store: exact search over numpy arrays, gone when the process ends.

Meant for tests and small experiments; it implements the whole
:class:`~mmserve.stores.contract.VectorStore` contract (space checks, upserts by id) so code
tested against it behaves the same on the persistent stores.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mmserve.errors import CollectionNotFoundError, ItemNotFoundError, StoreError
from mmserve.models.spec import EmbeddingSpace
from mmserve.stores.contract import (
    Capability,
    Collection,
    Item,
    Match,
    Modality,
    Payload,
    StoredItem,
    UpsertResult,
    Vector,
    as_vector,
    check_collection_name,
    check_same_collection,
    check_space,
    validate_top_k,
)


@dataclass
class _Table:
    collection: Collection
    ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    payloads: list[Payload] = field(default_factory=list)
    vectors: list[Vector] = field(default_factory=list)
    #: Stacked vectors, rebuilt lazily after writes.
    matrix: Vector | None = None


class MemoryStore:
    """Exact (brute-force) cosine search in memory. ``location`` and options are ignored."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({"browse", "images_on_request"})

    def __init__(self, location: str = "memory", options: Mapping[str, Any] | None = None) -> None:
        if options:
            raise StoreError(
                f"the memory store takes no options, got: {', '.join(sorted(options))}"
            )
        self.location = location
        self._tables: dict[str, _Table] = {}
        self._lock = threading.RLock()

    def _table(self, name: str) -> _Table:
        table = self._tables.get(name)
        if table is None:
            raise CollectionNotFoundError(name=name, known=list(self._tables))
        return table

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        check_collection_name(name)
        with self._lock:
            existing = self._tables.get(name)
            if existing is not None:
                if not exist_ok:
                    raise StoreError(f"collection {name!r} already exists")
                check_same_collection(existing.collection, space, modality)
                return self.get_collection(name)
            collection = Collection(name=name, space=space, modality=modality)
            self._tables[name] = _Table(collection)
            return collection

    def get_collection(self, name: str) -> Collection:
        with self._lock:
            table = self._table(name)
            return table.collection.model_copy(update={"count": len(table.ids)})

    def list_collections(self) -> list[Collection]:
        with self._lock:
            return [self.get_collection(name) for name in sorted(self._tables)]

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._table(name)
            del self._tables[name]

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        with self._lock:
            table = self._table(name)
            check_space(table.collection, space)
            vectors = [as_vector(item.vector, dim=space.dim) for item in items]
            result = UpsertResult()
            for item, vector in zip(items, vectors, strict=True):
                row = table.rows.get(item.id)
                if row is None:
                    table.rows[item.id] = len(table.ids)
                    table.ids.append(item.id)
                    table.payloads.append(item.payload.model_copy(deep=True))
                    table.vectors.append(vector)
                    result.inserted += 1
                else:
                    table.payloads[row] = item.payload.model_copy(deep=True)
                    table.vectors[row] = vector
                    result.updated += 1
            table.matrix = None
            return result

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        with self._lock:
            table = self._table(name)
            return {i for i in ids if i in table.rows}

    def search(
        self,
        name: str,
        vector: Vector,
        *,
        space: EmbeddingSpace,
        top_k: int = 5,
        include_images: bool = True,
    ) -> list[Match]:
        validate_top_k(top_k)
        drop = None if include_images else {"image": None}
        with self._lock:
            table = self._table(name)
            check_space(table.collection, space)
            query = as_vector(vector, dim=space.dim)
            if not table.ids:
                return []
            if table.matrix is None:
                table.matrix = np.stack(table.vectors)
            scores = table.matrix @ query
            k = min(top_k, len(table.ids))
            best = np.argpartition(-scores, k - 1)[:k]
            # ties broken by id so results are deterministic
            order = sorted(best, key=lambda row: (-float(scores[row]), table.ids[row]))
            return [
                Match(
                    id=table.ids[row],
                    score=float(scores[row]),
                    payload=table.payloads[row].model_copy(update=drop, deep=True),
                )
                for row in order
            ]

    def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        """A page of items in insertion order, without their images."""
        with self._lock:
            table = self._table(name)
            rows = range(len(table.ids))[offset : offset + limit]
            return [
                StoredItem(
                    id=table.ids[row],
                    payload=table.payloads[row].model_copy(update={"image": None}, deep=True),
                )
                for row in rows
            ]

    def get_item(self, name: str, item_id: str) -> StoredItem:
        with self._lock:
            table = self._table(name)
            row = table.rows.get(item_id)
            if row is None:
                raise ItemNotFoundError(
                    f"collection {name!r} has no item {item_id!r}", collection=name, item_id=item_id
                )
            return StoredItem(id=item_id, payload=table.payloads[row].model_copy(deep=True))

    def optimize(self, name: str) -> None:
        with self._lock:
            self._table(name)

    def close(self) -> None:
        """Nothing to release; the data lives as long as this object."""


__all__ = ["MemoryStore"]
