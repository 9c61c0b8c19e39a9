"""The contract of a vector store plugin, and the records it keeps.

A store holds named *collections*. Each collection is created with an explicit
:class:`~mmserve.models.spec.EmbeddingSpace` and a modality (``text`` or ``image``) that never
change afterwards; every vector written to or searched in it must come from that space, or the
store refuses with :class:`~mmserve.errors.EmbeddingSpaceMismatchError` naming both spaces.

An :class:`Item` is a stable id (a content hash unless the caller gives one, see
:func:`content_id`), a unit-norm vector and a :class:`Payload`: the text, or the image itself
(encoded bytes, so a later step can show it or ask a question about it), plus user metadata.
Writes are upserts by id, so re-indexing the same content never duplicates it.

What a store must do -- lifecycle, each method, the errors it raises, the optional
capabilities it may declare -- is written once, in :class:`VectorStore`'s docstring; the tests
that check it ship in :mod:`mmserve.testing.store_contract`. The calls as the engine, the
store replica and the store client forward them are one table,
:data:`mmserve.stores.calls.STORE_CALLS`.

Quick start::

    from mmserve.stores import open_store_at
    store = open_store_at("memory")
    store.create_collection("notes", space=space, modality="text")
    item = Item(id=content_id(text="hi"), vector=v, payload=Payload(text="hi"))
    store.upsert("notes", [item], space=space)
    matches = store.search("notes", v, space=space, top_k=3)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypeGuard, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmserve.errors import EmbeddingSpaceMismatchError, InputError, StoreError
from mmserve.models.identity import same_model
from mmserve.models.spec import EmbeddingSpace

Modality = Literal["text", "image"]
MODALITIES: tuple[Modality, ...] = get_args(Modality)

#: One vector: shape (dim,), float32.
Vector = npt.NDArray[np.float32]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")


class Collection(BaseModel):
    """A collection's identity: its name, fixed embedding space and modality, and size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    space: EmbeddingSpace
    modality: Modality = Field(description="What the items are: texts or images.")
    count: int = Field(default=0, ge=0, description="Number of items.")


class Payload(BaseModel):
    """What an item carries besides its vector."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="The text, for text items.")
    image: bytes | None = Field(
        default=None, description="The image file's bytes (PNG, JPEG, ...), for image items."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="User metadata (JSON-safe), e.g. the source file."
    )


class Item(BaseModel):
    """One indexed thing: a stable id, its unit-norm vector and its payload."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    id: str = Field(min_length=1, max_length=256)
    vector: Vector
    payload: Payload = Field(default_factory=Payload)

    @field_validator("vector", mode="before")
    @classmethod
    def _to_array(cls, value: Any) -> Vector:
        return np.asarray(value, dtype=np.float32).reshape(-1)


class Match(BaseModel):
    """One search result; ``score`` is the cosine similarity (higher is closer)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    score: float
    payload: Payload


class StoredItem(BaseModel):
    """One item as a store lists it: its id and payload (no vector)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    payload: Payload


class UpsertResult(BaseModel):
    """How an upsert changed a collection."""

    model_config = ConfigDict(extra="forbid")

    inserted: int = 0
    updated: int = 0


@runtime_checkable
class VectorStore(Protocol):
    """The contract of every ``store`` plugin (the one place it is written down).

    **Lifecycle.** ``Store(location, options)`` opens (or creates) the data at ``location`` (a
    folder, a file or a URI; ``options`` is the app config's ``store.options``) and must be
    cheap; bad options raise :class:`~mmserve.errors.StoreError` naming the option. Every
    method is synchronous, may block, and must be safe to call from several threads at once
    (the engine calls them on a bounded thread pool, :mod:`mmserve.stores.async_store`, and a
    served app from the one ``store`` replica, :mod:`mmserve.serve.store_server`). ``close()``
    releases what the store holds; nothing is called after it.

    **Writes** (``create_collection``, ``drop_collection``, ``upsert``, ``optimize``) return
    only once durable (committed), and each is one transaction: applied whole or not at all,
    so a write sent twice (after a replica died under it) is applied once. **Reads**
    (``get_collection``, ``list_collections``, ``existing_ids``, ``search``) see every write
    that returned before them in the same store object.

    **Errors** (all :class:`~mmserve.errors.MmserveError`, so they reach a caller as 4xx):

    * :class:`~mmserve.errors.CollectionNotFoundError` -- any method given an unknown
      collection (but ``create_collection``); it lists the known ones;
    * :class:`~mmserve.errors.EmbeddingSpaceMismatchError` -- vectors of another space than
      the collection's (``upsert``, ``search``, re-creating it), naming both
      (:func:`check_space`);
    * :class:`~mmserve.errors.InputError` -- a bad collection name
      (:func:`check_collection_name`), a vector of the wrong dimension or not finite
      (:func:`as_vector`), ``top_k`` outside 1..1000 (:func:`validate_top_k`);
    * :class:`~mmserve.errors.StoreError` -- anything else the caller asked wrongly (a
      collection that must be new and exists, another modality), or the store failing.

    **Optional capabilities** are declared, never guessed: a store lists those it has in a
    class attribute ``capabilities`` (:data:`Capability`), and each is a small protocol of
    its own -- ``"browse"``: :class:`BrowsableStore`; ``"images_on_request"``:
    :class:`ImagesOnRequestStore`. A store without one still serves everything else
    (:func:`capabilities_of`). :mod:`mmserve.testing.store_contract` holds the tests every
    store passes, one class per protocol.
    """

    def __init__(self, location: str, options: Mapping[str, Any] | None = None) -> None: ...

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        """Create ``name`` (empty) with its space and modality, which never change. When it
        exists: with ``exist_ok`` return it if its space and modality are the asked ones
        (else EmbeddingSpaceMismatchError, or StoreError naming the modality it holds);
        without, StoreError ("already exists"). InputError for a bad name."""
        ...

    def get_collection(self, name: str) -> Collection:
        """The collection with its current ``count``; CollectionNotFoundError."""
        ...

    def list_collections(self) -> list[Collection]:
        """Every collection with its count, by name."""
        ...

    def drop_collection(self, name: str) -> None:
        """Delete ``name`` and its items; CollectionNotFoundError."""
        ...

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        """Insert or replace items by id (vectors renormalised, :func:`as_vector`); how many
        were new and how many replaced; returns after the write is committed."""
        ...

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` already in the collection (any characters, quotes included)."""
        ...

    def search(
        self, name: str, vector: Vector, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        """The ``top_k`` items closest to ``vector`` by cosine similarity (``score``, higher
        is closer), best first, with their payloads (images included); ``[]`` for an empty
        collection."""
        ...

    def optimize(self, name: str) -> None:
        """Compact storage and build or refresh any search index (after a large ingest);
        results stay the same."""
        ...

    def close(self) -> None:
        """Release files, connections and locks."""
        ...


#: An optional part of the contract a store may declare in its ``capabilities``.
Capability = Literal["browse", "images_on_request"]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)


@runtime_checkable
class BrowsableStore(VectorStore, Protocol):
    """Capability ``"browse"``: a collection's items can be paged through and fetched by id
    (``GET /v1/collections/{name}/items``; without it the server answers 501)."""

    def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
        """A page of items in a stable order (insertion or id order between writes), images
        left out (``payload.image`` None); CollectionNotFoundError."""
        ...

    def get_item(self, name: str, item_id: str) -> StoredItem:
        """One item with its image bytes; ItemNotFoundError for an unknown id,
        CollectionNotFoundError for an unknown collection."""
        ...


@runtime_checkable
class ImagesOnRequestStore(VectorStore, Protocol):
    """Capability ``"images_on_request"``: ``search`` takes ``include_images`` and, when it
    is False, does not read the image bytes (``payload.image`` None). Without it the engine
    drops the images from the store's answer instead."""

    def search(
        self,
        name: str,
        vector: Vector,
        *,
        space: EmbeddingSpace,
        top_k: int = 5,
        include_images: bool = True,
    ) -> list[Match]: ...


#: The methods each capability adds to (or changes in) :class:`VectorStore`.
CAPABILITY_METHODS: dict[Capability, tuple[str, ...]] = {
    "browse": ("list_items", "get_item"),
    "images_on_request": ("search",),
}


def capabilities_of(store: object) -> frozenset[Capability]:
    """The capabilities ``store`` declares (its class attribute ``capabilities``; none when
    it has no such attribute). StoreError for an unknown name or a declared capability whose
    methods the store lacks, so a wrong declaration fails when the store opens."""
    declared: object = getattr(store, "capabilities", frozenset())
    if isinstance(declared, str) or not isinstance(declared, (set, frozenset, tuple, list)):
        raise StoreError(
            f"the store {type(store).__name__} declares capabilities={declared!r}",
            hint=f"declare a frozenset of {', '.join(CAPABILITIES)}",
        )
    found: set[Capability] = set()
    for capability in declared:
        if capability not in CAPABILITIES:
            raise StoreError(
                f"the store {type(store).__name__} declares an unknown capability {capability!r}",
                hint=f"known: {', '.join(CAPABILITIES)}",
            )
        missing = [
            m for m in CAPABILITY_METHODS[capability] if not callable(getattr(store, m, None))
        ]
        if missing:
            raise StoreError(
                f"the store {type(store).__name__} declares {capability!r} but has no "
                f"{', '.join(missing)}",
                hint="implement the capability's protocol (mmserve.stores.contract)",
            )
        found.add(capability)
    return frozenset(found)


def can_browse(store: VectorStore) -> TypeGuard[BrowsableStore]:
    """Whether ``store`` declares ``"browse"``."""
    return "browse" in capabilities_of(store)


def leaves_images_out(store: VectorStore) -> TypeGuard[ImagesOnRequestStore]:
    """Whether ``store`` declares ``"images_on_request"``."""
    return "images_on_request" in capabilities_of(store)


# --- helpers shared by the store implementations ------------------------------------------


def check_collection_name(name: str) -> str:
    """Refuse names that are not safe as table or file names."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"invalid collection name {name!r}",
            name="collection",
            hint="use 1-128 letters, digits, '_' or '-', starting with a letter",
        )
    return name


def same_space(recorded: EmbeddingSpace, current: EmbeddingSpace) -> bool:
    """Whether vectors of ``current`` belong in a collection recorded with ``recorded``: the
    same backend, dimension and weights (see :mod:`mmserve.models.identity`; a folder path
    recorded by an older mmserve counts when it holds the same weights here)."""
    return (
        recorded.backend == current.backend
        and recorded.dim == current.dim
        and same_model(recorded.model_id, current.model_id)
    )


def check_space(collection: Collection, space: EmbeddingSpace) -> None:
    """Raise EmbeddingSpaceMismatchError unless ``space`` is the collection's space."""
    if not same_space(collection.space, space):
        raise EmbeddingSpaceMismatchError(
            left=f"collection {collection.name!r} ({collection.space})",
            right=f"the given vectors ({space})",
            hint="query and index a collection with the encoder it was created with "
            "(`mmserve index list` shows each collection's space)",
        )


def check_same_collection(
    collection: Collection, space: EmbeddingSpace, modality: Modality
) -> None:
    """Re-creating an existing collection must ask for the same space and modality."""
    check_space(collection, space)
    if modality != collection.modality:
        raise StoreError(
            f"collection {collection.name!r} holds {collection.modality} items, "
            f"not {modality} items",
            hint="use another collection for the other modality",
        )


def as_vector(vector: Any, *, dim: int) -> Vector:
    """A float32 (dim,) array, renormalised to unit length; refuses wrong shapes clearly."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.shape[0] != dim:
        raise InputError(
            f"vector has dimension {array.shape[0]}, the collection's space has {dim}",
            name="vector",
        )
    if not np.all(np.isfinite(array)):
        raise InputError("vector contains NaN or infinite values", name="vector")
    norm = float(np.linalg.norm(array))
    # zero vectors have no direction; keep them as-is rather than dividing by zero
    return array / norm if norm > 0 else array


def content_id(*, text: str | None = None, pixels: bytes | None = None) -> str:
    """A stable id from content: the same text (or decoded image pixels) gives the same id.

    Images are hashed over their decoded RGB pixels and size (pass ``mode+size+tobytes()``
    via :func:`image_content_id`) so the same picture gets one id whichever way it arrives.
    """
    if (text is None) == (pixels is None):
        raise ValueError("content_id needs exactly one of text= or pixels=")
    digest = hashlib.sha256()
    if text is not None:
        digest.update(b"text\0" + text.encode("utf-8"))
    else:
        assert pixels is not None
        digest.update(b"image\0" + pixels)
    return digest.hexdigest()[:32]


def image_content_id(image: Any) -> str:
    """The content id of a PIL image (over its RGB pixels and size)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    return content_id(pixels=f"{width}x{height}\0".encode() + rgb.tobytes())


def validate_top_k(top_k: int) -> int:
    if not 1 <= top_k <= 1000:
        raise InputError(f"top_k must be between 1 and 1000, got {top_k}", name="top_k")
    return top_k


__all__ = [
    "CAPABILITIES",
    "CAPABILITY_METHODS",
    "MODALITIES",
    "BrowsableStore",
    "Capability",
    "Collection",
    "ImagesOnRequestStore",
    "Item",
    "Match",
    "Modality",
    "Payload",
    "StoredItem",
    "UpsertResult",
    "Vector",
    "VectorStore",
    "as_vector",
    "can_browse",
    "capabilities_of",
    "check_collection_name",
    "check_same_collection",
    "check_space",
    "content_id",
    "image_content_id",
    "leaves_images_out",
    "same_space",
    "validate_top_k",
]
