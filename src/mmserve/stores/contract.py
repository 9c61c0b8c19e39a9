"""The contract of a vector store plugin, and the records it keeps.

A store holds named *collections*. Each collection is created with an explicit
:class:`~mmserve.models.spec.EmbeddingSpace` and a modality (``text`` or ``image``) that never
change afterwards; every vector written to or searched in it must come from that space, or the
store refuses with :class:`~mmserve.errors.EmbeddingSpaceMismatchError` naming both spaces.

An :class:`Item` is a stable id (a content hash unless the caller gives one, see
:func:`content_id`), a unit-norm vector and a :class:`Payload`: the text, or the image itself
(encoded bytes, so a later step can show it or ask a question about it), plus user metadata.
Writes are upserts by id, so re-indexing the same content never duplicates it.

Lifecycle of a store: ``Store(location, options)`` opens (or creates) the data at ``location``
cheaply; methods are synchronous and may block, and must be safe to call from several threads
(steps and routes call them through :func:`mmserve.stores.async_store.as_async_store`, on a
bounded pool off the event loop). A write method returns only once the write is durable
(committed), which is what lets an ingest acknowledge progress.

Quick start::

    from mmserve.stores import open_store_at
    store = open_store_at("memory")
    store.create_collection("notes", space=space, modality="text")
    store.upsert("notes", [Item(id=content_id(text="hi"), vector=v, payload=Payload(text="hi"))])
    matches = store.search("notes", v, space=space, top_k=3)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, get_args, runtime_checkable

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
    """Every ``store`` plugin. Constructed as ``Store(location, options)``."""

    def __init__(self, location: str, options: Mapping[str, Any] | None = None) -> None: ...

    def create_collection(
        self, name: str, *, space: EmbeddingSpace, modality: Modality, exist_ok: bool = True
    ) -> Collection:
        """Create ``name``; if it exists (and ``exist_ok``) its space and modality must match."""
        ...

    def get_collection(self, name: str) -> Collection:
        """The collection with its current count; raises CollectionNotFoundError."""
        ...

    def list_collections(self) -> list[Collection]: ...

    def drop_collection(self, name: str) -> None:
        """Delete ``name`` and its items; raises CollectionNotFoundError."""
        ...

    def upsert(self, name: str, items: Sequence[Item], *, space: EmbeddingSpace) -> UpsertResult:
        """Insert or replace items by id; returns after the write is committed."""
        ...

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` already in the collection."""
        ...

    def search(
        self, name: str, vector: Vector, *, space: EmbeddingSpace, top_k: int = 5
    ) -> list[Match]:
        """The ``top_k`` items closest to ``vector``, best first.

        A store may also take ``include_images: bool = True`` and, when it is False, leave
        out the image bytes (the shipped stores do); for a store that does not, the server
        drops them from its answer (:mod:`mmserve.stores.async_store`).
        """
        ...

    def optimize(self, name: str) -> None:
        """Compact storage and build or refresh any search index (after a large ingest)."""
        ...

    def close(self) -> None: ...

    # Optional (stores written before mmserve could browse collections may lack them; the
    # server then answers 501, see mmserve.stores.browse):
    #
    # def list_items(self, name: str, *, offset: int = 0, limit: int = 50) -> list[StoredItem]:
    #     """A page of items in a stable order (insertion order between writes), images left
    #     out (``payload.image`` None); raises CollectionNotFoundError."""
    #
    # def get_item(self, name: str, item_id: str) -> StoredItem:
    #     """One item with its image bytes; raises ItemNotFoundError for an unknown id."""


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
    "MODALITIES",
    "Collection",
    "Item",
    "Match",
    "Modality",
    "Payload",
    "StoredItem",
    "UpsertResult",
    "Vector",
    "VectorStore",
    "as_vector",
    "check_collection_name",
    "check_same_collection",
    "check_space",
    "content_id",
    "image_content_id",
    "same_space",
    "validate_top_k",
]
