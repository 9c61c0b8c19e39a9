"""The default vector store: LanceDB, embedded and persistent in a data folder (no server).

One LanceDB table per collection. The collection's embedding space and modality are written
into the table's Arrow schema metadata at creation, in the same commit that creates the
table, so a collection can never exist without its space. Rows are ``id`` (the upsert key),
``vector`` (fixed-size float32), ``text``, ``image`` (the image file's bytes) and
``metadata`` (JSON text).

Durability: every write is one LanceDB transaction (data files first, then an atomic
manifest commit), and a method returns only after the commit, so whatever it acknowledged
survives the process being killed; a kill mid-write leaves only unreferenced files behind.

Search is exact until :meth:`LanceDBStore.optimize` finds the table large enough for an
ANN index (``index_min_rows``); rows added after the index was built are still searched
(exactly) until the next optimize folds them in. Options (``store.options`` in the config):

``index_type``      ``ivf_pq`` (default), ``ivf_hnsw_sq`` or ``none``
``index_min_rows``  build the index once a collection has this many rows (default 10000)
``num_partitions``  IVF partitions (default: about rows / 4096, at least 1)
``num_sub_vectors`` PQ sub-vectors (default dim / 8)
``nprobes``         IVF partitions probed per query (default 20)
``refine_factor``   re-rank this many times ``top_k`` candidates exactly (default 10)
``ef``              HNSW candidate list size (default 100)
``keep_versions_s`` optimize deletes table versions older than this (default 600); readers
                    holding an older version (another process mid-search) fail once it is
                    gone, so keep it above your longest search or ingest batch
``read_consistency_s`` how late this process may see commits made by another process (the
                    writer replica, a CLI ingest), in seconds; LanceDB's
                    ``read_consistency_interval``. 0 (default): every read first checks for
                    the latest version (strong: a read after an acknowledged write sees it;
                    one manifest lookup per read, a request to object storage on ``s3://``).
                    A process always sees its own writes at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import BTree, HnswSq, IvfPq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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

_SPACE_KEY = b"mmserve.space"
_MODALITY_KEY = b"mmserve.modality"
_SELECT = ["id", "text", "image", "metadata", "_distance"]
_SELECT_NO_IMAGE = ["id", "text", "metadata", "_distance"]


class LanceDBOptions(BaseModel):
    """Tuning knobs of the LanceDB store (``store.options`` in the app config)."""

    model_config = ConfigDict(extra="forbid")

    index_type: Literal["ivf_pq", "ivf_hnsw_sq", "none"] = "ivf_pq"
    index_min_rows: int = Field(default=10_000, ge=256)
    num_partitions: int | None = Field(default=None, ge=1)
    num_sub_vectors: int | None = Field(default=None, ge=1)
    nprobes: int = Field(default=20, ge=1)
    refine_factor: int | None = Field(default=10, ge=1)
    ef: int = Field(default=100, ge=1)
    keep_versions_s: float = Field(default=600.0, ge=0.001)
    read_consistency_s: float = Field(default=0.0, ge=0)


def _schema(space: EmbeddingSpace, modality: Modality) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), space.dim), nullable=False),
            pa.field("text", pa.string()),
            pa.field("image", pa.large_binary()),
            pa.field("metadata", pa.string()),
        ],
        metadata={_SPACE_KEY: space.model_dump_json().encode(), _MODALITY_KEY: modality.encode()},
    )


def _space_key(collection: Collection) -> bytes:
    return collection.space.model_dump_json().encode()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LanceDBStore:
    """Collections as LanceDB tables in the folder (or object-store URI) ``location``."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({"browse", "images_on_request"})

    def __init__(self, location: str, options: Mapping[str, Any] | None = None) -> None:
        try:
            self.options = LanceDBOptions.model_validate(dict(options or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise StoreError(f"invalid lancedb store options: {problems}") from exc
        self.location = location
        if "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
        # interval 0 (the default): every read sees commits made by other processes (the
        # writer replica for a reader replica, a CLI ingest while the server runs); on a
        # local disk that check is one cheap manifest lookup
        interval = timedelta(seconds=self.options.read_consistency_s)
        self._db = lancedb.connect(location, read_consistency_interval=interval)
        self._tables: dict[str, tuple[Any, Collection]] = {}
        self._lock = threading.RLock()

    # -- collections -----------------------------------------------------------------------

    def _names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            response = self._db.list_tables(page_token=token)
            names.extend(response.tables)
            token = response.page_token
            if not token:
                return sorted(names)

    def _open(self, name: str) -> tuple[Any, Collection]:
        """The table and collection of ``name``; a cached handle is checked first.

        Another process (a CLI beside the server) may have dropped the table, or dropped and
        re-created it with another space, since it was cached: reading the schema of the
        cached handle reloads the latest manifest (the consistency interval is 0), so a gone
        table is found here and a changed space makes the handle be opened afresh.
        """
        with self._lock:
            cached = self._tables.get(name)
            if cached is not None:
                table, collection = cached
                try:
                    current = table.schema.metadata or {}
                except Exception:  # lance reports a dropped table in several ways
                    current = None
                if current is not None and current.get(_SPACE_KEY) == _space_key(collection):
                    return cached
                self._tables.pop(name, None)
            check_collection_name(name)
            try:
                table = self._db.open_table(name)
            except (FileNotFoundError, ValueError) as exc:
                raise CollectionNotFoundError(name=name, known=self._names()) from exc
            collection = _collection_of(name, table.schema)
            self._tables[name] = (table, collection)
            return table, collection

    @contextmanager
    def _table_use(self, name: str) -> Iterator[None]:
        """Turn lance's errors for a table dropped while in use into CollectionNotFoundError."""
        try:
            yield
        except (OSError, RuntimeError, ValueError) as exc:
            if name in self._names():
                raise
            with self._lock:
                self._tables.pop(name, None)
            raise CollectionNotFoundError(name=name, known=self._names()) from exc

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        check_collection_name(name)
        with self._lock:
            if name not in self._names():
                try:
                    table = self._db.create_table(name, schema=_schema(space, modality))
                except ValueError:
                    # another process created it since we listed; fall through and check it
                    if name not in self._names():
                        raise
                else:
                    collection = Collection(name=name, space=space, modality=modality)
                    self._tables[name] = (table, collection)
                    return collection
            if not exist_ok:
                raise StoreError(f"collection {name!r} already exists")
            _, existing = self._open(name)
            check_same_collection(existing, space, modality)
            return self.get_collection(name)

    def get_collection(self, name: str) -> Collection:
        table, collection = self._open(name)
        with self._table_use(name):
            return collection.model_copy(update={"count": table.count_rows()})

    def list_collections(self) -> list[Collection]:
        """Every collection; tables in the folder that other tools made are left out."""
        collections = []
        for name in self._names():
            try:
                collections.append(self.get_collection(name))
            except StoreError:
                continue
        return collections

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._open(name)
            self._db.drop_table(name)
            self._tables.pop(name, None)

    # -- items -----------------------------------------------------------------------------

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        table, collection = self._open(name)
        check_space(collection, space)
        # the last write of an id within one batch wins, as it would across batches
        unique = list({item.id: item for item in items}.values())
        if not unique:
            return UpsertResult()
        vectors = np.concatenate([as_vector(item.vector, dim=space.dim) for item in unique])
        data = pa.Table.from_arrays(
            [
                pa.array([item.id for item in unique], pa.string()),
                pa.FixedSizeListArray.from_arrays(pa.array(vectors, pa.float32()), space.dim),
                pa.array([item.payload.text for item in unique], pa.string()),
                pa.array([item.payload.image for item in unique], pa.large_binary()),
                pa.array([json.dumps(item.payload.metadata) for item in unique], pa.string()),
            ],
            schema=table.schema,
        )
        with self._table_use(name):
            result = (
                table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data)
            )
        return UpsertResult(inserted=result.num_inserted_rows, updated=result.num_updated_rows)

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        table, _ = self._open(name)
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            predicate = f"id IN ({', '.join(_quote(i) for i in chunk)})"
            with self._table_use(name):
                rows = table.search().where(predicate).select(["id"]).limit(None).to_arrow()
            found.update(rows.column("id").to_pylist())
        return found

    def search(
        self,
        name: str,
        vector: Vector,
        *,
        space: EmbeddingSpace,
        top_k: int = 5,
        include_images: bool = True,
    ) -> list[Match]:
        """The closest items; image bytes are read only with ``include_images``."""
        validate_top_k(top_k)
        table, collection = self._open(name)
        check_space(collection, space)
        query = (
            table.search(as_vector(vector, dim=space.dim), vector_column_name="vector")
            .distance_type("cosine")
            .limit(top_k)
            .nprobes(self.options.nprobes)
            .ef(self.options.ef)
            .select(_SELECT if include_images else _SELECT_NO_IMAGE)
        )
        if self.options.refine_factor is not None:
            query = query.refine_factor(self.options.refine_factor)
        with self._table_use(name):
            rows = query.to_arrow().to_pylist()
        return [
            Match(
                id=row["id"],
                # cosine distance is 1 - cosine similarity
                score=1.0 - float(row["_distance"]),
                payload=Payload(
                    text=row["text"],
                    image=row.get("image"),
                    metadata=json.loads(row["metadata"] or "{}"),
                ),
            )
            for row in rows
        ]

    def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        """A page of items in storage order (insertion order between writes), no images."""
        table, _ = self._open(name)
        query = table.search().select(["id", "text", "metadata"]).offset(offset).limit(limit)
        with self._table_use(name):
            rows = query.to_arrow().to_pylist()
        return [_stored(row) for row in rows]

    def get_item(self, name: str, item_id: str) -> StoredItem:
        """One item with its image bytes."""
        table, _ = self._open(name)
        query = (
            table.search()
            .where(f"id = {_quote(item_id)}")
            .select(["id", "text", "image", "metadata"])
            .limit(1)
        )
        with self._table_use(name):
            rows = query.to_arrow().to_pylist()
        if not rows:
            raise ItemNotFoundError(
                f"collection {name!r} has no item {item_id!r}", collection=name, item_id=item_id
            )
        return _stored(rows[0])

    # -- maintenance -----------------------------------------------------------------------

    def has_index(self, name: str, column: str = "vector") -> bool:
        table, _ = self._open(name)
        return any(column in index.columns for index in table.list_indices())

    def optimize(self, name: str) -> None:
        """Compact small writes; once the table is big enough, index ids and vectors.

        The id index speeds up the id lookups of upserts and resumed ingests; existing
        indexes are brought up to date by ``table.optimize()`` itself.
        """
        table, _ = self._open(name)
        # Each write is a new table version; without pruning, a collection fed one item at a
        # time keeps every one of them on disk (150 upserts: 152 versions).
        table.optimize(cleanup_older_than=timedelta(seconds=self.options.keep_versions_s))
        if table.count_rows() < self.options.index_min_rows:
            return
        if not self.has_index(name, "id"):
            table.create_index("id", config=BTree(), replace=True)
        if self.options.index_type != "none" and not self.has_index(name):
            self.create_index(name)

    def create_index(self, name: str) -> None:
        """(Re)build the ANN index of ``name`` with the configured parameters."""
        table, collection = self._open(name)
        rows = table.count_rows()
        partitions = self.options.num_partitions or max(1, rows // 4096)
        config: IvfPq | HnswSq
        if self.options.index_type == "ivf_hnsw_sq":
            config = HnswSq(distance_type="cosine", num_partitions=partitions)
        else:
            config = IvfPq(
                distance_type="cosine",
                num_partitions=partitions,
                num_sub_vectors=self.options.num_sub_vectors or _sub_vectors(collection.space.dim),
            )
        table.create_index("vector", config=config, replace=True)

    def close(self) -> None:
        with self._lock:
            self._tables.clear()


def _stored(row: dict[str, Any]) -> StoredItem:
    return StoredItem(
        id=row["id"],
        payload=Payload(
            text=row["text"],
            image=row.get("image"),
            metadata=json.loads(row["metadata"] or "{}"),
        ),
    )


def _sub_vectors(dim: int) -> int:
    # 8 dimensions per sub-vector keeps PQ accurate enough for refine to fix the rest
    for per in (8, 16, 4, 2, 1):
        if dim % per == 0:
            return dim // per
    return 1


def _collection_of(name: str, schema: pa.Schema) -> Collection:
    metadata = schema.metadata or {}
    try:
        space = EmbeddingSpace.model_validate_json(metadata[_SPACE_KEY])
        modality = metadata[_MODALITY_KEY].decode()
        return Collection(name=name, space=space, modality=modality)  # type: ignore[arg-type]
    except (KeyError, ValueError) as exc:
        raise StoreError(
            f"table {name!r} is not an mmserve collection (no embedding space recorded)",
            hint="it was created by another tool; use another collection name",
        ) from exc


__all__ = ["LanceDBOptions", "LanceDBStore"]
