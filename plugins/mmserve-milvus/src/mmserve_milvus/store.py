"""The ``milvus`` vector store: one Milvus collection per mmserve collection (its layout:
:mod:`mmserve_milvus.schema`), created with its vector index.

Scores are Milvus' COSINE metric, the cosine similarity (higher is closer), as the LanceDB
store gives. Collections are created with Strong consistency (``consistency_level``): a
search right after an acknowledged upsert sees it. An upsert returns once Milvus acknowledged
it (Milvus Lite: written to its write-ahead log, which survives the process being killed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pymilvus import MilvusClient, MilvusException

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
    check_same_collection,
    check_space,
    validate_top_k,
)
from mmserve_milvus.blobs import BlobFolder
from mmserve_milvus.options import (
    is_server,
    lite_file,
    lite_is_locked,
    lite_users,
    parse_options,
    server_token,
)
from mmserve_milvus.schema import (
    MODALITY,
    NAME,
    SPACE,
    TEXT_MAX,
    collection_of,
    milvus_name,
    quote,
    schema,
)

_CHUNK = 500
_NOT_FOUND = 100  # Milvus' "collection not found"
_LITE_CHANNEL = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}


class MilvusStore:
    """Collections in Milvus Lite (``location`` a ``.db`` path) or a Milvus server (a URI)."""

    #: Browsing (pages in id order) and searches that leave the image blobs unread.
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"browse", "images_on_request"})

    def __init__(self, location: str, options: Mapping[str, Any] | None = None) -> None:
        self.options = parse_options(options)
        self.location = location
        self._lite: Path | None = None
        blobs = self.options.blob_path
        connection: dict[str, Any] = {}
        if is_server(location):
            uri, token = location, server_token(self.options)
        else:
            self._lite = lite_file(location)
            uri, token = str(self._lite), ""
            # pymilvus pings every 10 s; Milvus Lite's in-process server allows one ping per
            # 5 minutes and answers more with GOAWAY (logged as "too_many_pings")
            connection["grpc_options"] = _LITE_CHANNEL
            if blobs is None:
                blobs = str(self._lite.with_name(self._lite.stem + "-blobs"))
        self.blobs = BlobFolder(Path(blobs) if blobs else None)
        if self._lite is not None:
            lite_users.acquire(self._lite)
        try:
            self._client = MilvusClient(
                uri=uri, token=token, db_name=self.options.db_name or "", timeout=10.0, **connection
            )
        except Exception as exc:
            self._release_lite()
            raise self._open_error(exc) from exc
        self._loaded: set[str] = set()
        self._lock = threading.RLock()
        self._closed = False

    def _open_error(self, exc: Exception) -> StoreError:
        if self._lite is None:
            return StoreError(
                f"cannot connect to Milvus at {self.location}: {exc}",
                hint="check the server address, that it runs, and the token (store.options)",
            )
        if lite_is_locked(self._lite):
            return StoreError(
                f"cannot open Milvus Lite at {self._lite}: another process has it open",
                hint="Milvus Lite serves one process at a time: stop the other one (e.g. the "
                "server, while running `mmserve index`), or use a Milvus server",
            )
        return StoreError(f"cannot open Milvus Lite at {self._lite}: {exc}")

    def _release_lite(self) -> None:
        if self._lite is not None and lite_users.release(self._lite):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(self._lite))

    # -- collections -----------------------------------------------------------------------

    @contextmanager
    def _calls(self, name: str) -> Iterator[None]:
        """Milvus errors as mmserve's: a collection gone meanwhile is CollectionNotFoundError."""
        try:
            yield
        except MilvusException as exc:
            message = str(exc.message).lower()
            gone = "collection" in message and ("not found" in message or "not exist" in message)
            if exc.code == _NOT_FOUND or gone:
                self._loaded.discard(name)
                raise CollectionNotFoundError(name=name, known=self._names()) from exc
            raise StoreError(f"milvus: {exc.message}") from exc

    def _names(self) -> list[str]:
        """The mmserve names of every mmserve collection in the database."""
        names = []
        for raw in self._client.list_collections(timeout=self.options.timeout_s):
            properties = self._client.describe_collection(raw).get("properties", {})
            if NAME in properties:
                names.append(str(properties[NAME]))
        return sorted(names)

    def _open(self, name: str) -> Collection:
        """The collection ``name`` (described afresh: another process may have dropped or
        re-created it), loaded for search."""
        raw = milvus_name(name)
        with self._calls(name):
            if not self._client.has_collection(raw):
                self._loaded.discard(name)
                raise CollectionNotFoundError(name=name, known=self._names())
            collection = collection_of(name, self._client.describe_collection(raw))
            if name not in self._loaded:
                state = self._client.get_load_state(raw)["state"]
                if getattr(state, "name", str(state)) != "Loaded":
                    self._client.load_collection(raw, timeout=self.options.timeout_s)
                self._loaded.add(name)
        return collection

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        raw = milvus_name(name)
        with self._lock, self._calls(name):
            if not self._client.has_collection(raw):
                try:
                    self._client.create_collection(
                        raw,
                        schema=schema(space),
                        index_params=self._index_params(),
                        consistency_level=self.options.consistency_level,
                        properties={
                            SPACE: space.model_dump_json(),
                            MODALITY: modality,
                            NAME: name,
                        },
                    )
                except MilvusException:
                    # another process created it since we looked; fall through and check it
                    if not self._client.has_collection(raw):
                        raise
                else:
                    return Collection(name=name, space=space, modality=modality)
            if not exist_ok:
                raise StoreError(f"collection {name!r} already exists")
        check_same_collection(self._open(name), space, modality)
        return self.get_collection(name)

    def _index_params(self) -> Any:
        build = self.options.index_params()
        params = self._client.prepare_index_params()
        # each build parameter as its own key (how pymilvus 2.6 sends them) and once more as
        # the JSON "params" key, the form Milvus Lite reads (a Milvus server reads both)
        params.add_index(
            "vector",
            index_type=self.options.index_type,
            metric_type="COSINE",
            params={**build, "params": build} if build else {},
        )
        return params

    def get_collection(self, name: str) -> Collection:
        collection = self._open(name)
        with self._calls(name):
            rows = self._client.query(
                milvus_name(name),
                filter="",
                output_fields=["count(*)"],
                consistency_level=self.options.consistency_level,
            )
        return collection.model_copy(update={"count": int(rows[0]["count(*)"])})

    def list_collections(self) -> list[Collection]:
        """Every mmserve collection; those other tools made (no space recorded) are left out."""
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
            with self._calls(name):
                self._client.drop_collection(milvus_name(name))
            self._loaded.discard(name)
            self.blobs.drop(name)

    # -- items -----------------------------------------------------------------------------

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        collection = self._open(name)
        check_space(collection, space)
        # the last write of an id within one batch wins, as it would across batches
        unique = list({item.id: item for item in items}.values())
        if not unique:
            return UpsertResult()
        present = self.existing_ids(name, [item.id for item in unique])
        rows = [self._row(name, item, space.dim) for item in unique]
        with self._calls(name):
            for start in range(0, len(rows), _CHUNK):
                self._client.upsert(
                    milvus_name(name), rows[start : start + _CHUNK], timeout=self.options.timeout_s
                )
        return UpsertResult(inserted=len(unique) - len(present), updated=len(present))

    def _row(self, name: str, item: Item, dim: int) -> dict[str, Any]:
        payload = item.payload
        text: str | None = payload.text
        text_blob = None
        if text is not None and len(encoded := text.encode("utf-8")) > TEXT_MAX:
            text, text_blob = None, self.blobs.put(name, encoded)
        image_blob = self.blobs.put(name, payload.image) if payload.image is not None else None
        return {
            "id": item.id,
            "vector": as_vector(item.vector, dim=dim).tolist(),
            "text": text,
            "text_blob": text_blob,
            "image_blob": image_blob,
            "metadata": payload.metadata,
        }

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        self._open(name)
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            with self._calls(name):
                rows = self._client.query(
                    milvus_name(name),
                    filter=f"id in [{', '.join(quote(i) for i in chunk)}]",
                    output_fields=["id"],
                    consistency_level=self.options.consistency_level,
                )
            found.update(str(row["id"]) for row in rows)
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
        collection = self._open(name)
        check_space(collection, space)
        query = as_vector(vector, dim=space.dim)
        fields = ["id", "text", "text_blob", "metadata"]
        with self._calls(name):
            [hits] = self._client.search(
                milvus_name(name),
                data=[query.tolist()],
                anns_field="vector",
                limit=top_k,
                output_fields=[*fields, "image_blob"] if include_images else fields,
                search_params={
                    "metric_type": "COSINE",
                    "params": self.options.search_params(top_k),
                },
                consistency_level=self.options.consistency_level,
                timeout=self.options.timeout_s,
            )
        return [self._match(name, hit, include_images) for hit in hits]

    def _match(self, name: str, hit: Any, include_images: bool) -> Match:
        entity = hit["entity"]
        text = entity.get("text")
        if entity.get("text_blob"):
            text = self.blobs.get(name, entity["text_blob"]).decode("utf-8")
        image = None
        if include_images and entity.get("image_blob"):
            image = self.blobs.get(name, entity["image_blob"])
        return Match(
            id=str(hit["id"]),
            # Milvus' COSINE "distance" is the cosine similarity: higher is closer
            score=float(hit["distance"]),
            payload=Payload(text=text, image=image, metadata=entity.get("metadata") or {}),
        )

    # -- browsing --------------------------------------------------------------------------

    def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        """A page of items in id order, without image bytes.

        A plain limited query has no stable order in Milvus (and caps offset + limit at
        16384), so the page's ids come from a query iterator, which walks primary keys in
        order; then the page's rows are read by id."""
        self._open(name)
        with self._calls(name):
            walk = self._client.query_iterator(
                milvus_name(name),
                batch_size=min(max(offset + limit, 1), 1000),
                limit=offset + limit,
                filter="",
                output_fields=["id"],
            )
            ids: list[str] = []
            try:
                while batch := walk.next():
                    ids.extend(str(row["id"]) for row in batch)
            finally:
                walk.close()
            page = sorted(ids)[offset : offset + limit]
            if not page:
                return []
            rows = self._client.query(
                milvus_name(name),
                filter=f"id in [{', '.join(quote(i) for i in page)}]",
                output_fields=["id", "text", "text_blob", "metadata"],
                consistency_level=self.options.consistency_level,
            )
        rows.sort(key=lambda row: str(row["id"]))
        return [self._stored(name, row, include_images=False) for row in rows]

    def get_item(self, name: str, item_id: str) -> StoredItem:
        """One item with its image bytes."""
        self._open(name)
        with self._calls(name):
            rows = self._client.query(
                milvus_name(name),
                filter=f"id == {quote(item_id)}",
                output_fields=["id", "text", "text_blob", "image_blob", "metadata"],
                consistency_level=self.options.consistency_level,
            )
        if not rows:
            raise ItemNotFoundError(
                f"collection {name!r} has no item {item_id!r}", collection=name, item_id=item_id
            )
        return self._stored(name, rows[0], include_images=True)

    def _stored(self, name: str, row: dict[str, Any], *, include_images: bool) -> StoredItem:
        text = row.get("text")
        if row.get("text_blob"):
            text = self.blobs.get(name, row["text_blob"]).decode("utf-8")
        image = None
        if include_images and row.get("image_blob"):
            image = self.blobs.get(name, row["image_blob"])
        payload = Payload(text=text, image=image, metadata=row.get("metadata") or {})
        return StoredItem(id=str(row["id"]), payload=payload)

    # -- maintenance -----------------------------------------------------------------------

    def index_info(self, name: str) -> dict[str, Any]:
        """The vector index Milvus reports for ``name`` (type, metric, indexed rows)."""
        self._open(name)
        with self._calls(name):
            return dict(self._client.describe_index(milvus_name(name), "vector"))

    def optimize(self, name: str) -> None:
        """Seal what was written (Milvus then indexes it); rebuild the vector index when
        ``index_type`` in the options differs from the collection's."""
        self._open(name)
        raw = milvus_name(name)
        with self._lock, self._calls(name):
            self._client.flush(raw, timeout=self.options.timeout_s)
            if self.index_info(name).get("index_type") == self.options.index_type:
                return
            self._client.release_collection(raw)
            self._loaded.discard(name)
            self._client.drop_index(raw, "vector")
            self._client.create_index(raw, self._index_params())
            self._client.load_collection(raw, timeout=self.options.timeout_s)
            self._loaded.add(name)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._client.close()
            self._release_lite()


__all__ = ["MilvusStore"]
