"""Request and response bodies of the collection endpoints (``/v1/collections``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Collection names, as the stores accept them.
COLLECTION_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,127}$"

_BASE64_IMAGE = "An image file (PNG, JPEG, ...), base64-encoded. URLs are not fetched."


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _exactly_one(*names: str) -> Callable[[dict[str, Any]], None]:
    """JSON Schema for "exactly one of ``names``, each a string" (the validators enforce it),
    so the OpenAPI document describes exactly the bodies the endpoint accepts."""

    def edit(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            field.pop("anyOf", None)
            field.pop("default", None)
            field["type"] = "string"
        schema["oneOf"] = [{"required": [name]} for name in names]

    return edit


def _check_exactly_one(model: BaseModel, *names: str) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    nulls = [n for n in names if n in model.model_fields_set and getattr(model, n) is None]
    if nulls:
        raise ValueError(f"'{nulls[0]}' must be a string; leave it out instead of null")
    if len(given) != 1:
        raise ValueError(f"give exactly one of {' or '.join(repr(n) for n in names)}")


class SpaceInfo(BaseModel):
    backend: str
    model_id: str
    dim: int


class CollectionInfo(BaseModel):
    name: str
    modality: Literal["text", "image"] = Field(description="What the items are.")
    count: int = Field(description="Number of items.")
    space: SpaceInfo = Field(description="The embedding space its vectors live in.")


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


class NewItem(_Request):
    """One item to add: a text or an image, with an optional id and metadata."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one("text", "image"))

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Stable id; a content hash when omitted. An existing id is replaced.",
    )
    text: str | None = Field(default=None, description="A text item.")
    image: str | None = Field(default=None, description=_BASE64_IMAGE)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON-safe metadata; with the whole body, nested at most "
        "server.limits.max_json_depth levels (checked before the body is parsed).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        _check_exactly_one(self, "text", "image")
        return self


class AddItemsRequest(_Request):
    items: list[NewItem] = Field(
        min_length=1, description="Texts or images (one modality per collection)."
    )
    model: str | None = Field(
        default=None, description="Encoder (config model name); the collection's by default."
    )


class AddItemsResponse(BaseModel):
    collection: str
    ids: list[str] = Field(description="Ids of the items, in request order.")
    inserted: int = Field(description="Items that were new.")
    updated: int = Field(description="Items whose id existed and were replaced.")
    count: int = Field(description="Items in the collection afterwards.")
    request_id: str


class DroppedCollection(BaseModel):
    collection: str
    count: int = Field(description="Items the collection held, now deleted with it.")
    request_id: str


class SearchRequest(_Request):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one("text", "image"))

    text: str | None = Field(default=None, description="A text query.")
    image: str | None = Field(default=None, description="An image query. " + _BASE64_IMAGE)
    top_k: int = Field(default=5, ge=1, le=100, description="How many matches.")
    model: str | None = Field(
        default=None, description="Query encoder (config name); found from the space."
    )
    include_images: bool = Field(default=True, description="Return stored images of matches.")

    @model_validator(mode="after")
    def _one_query(self) -> Self:
        _check_exactly_one(self, "text", "image")
        return self


class SearchPayload(BaseModel):
    """What a match holds (the ``retrieve`` step's ``MatchPayload``, images as base64)."""

    text: str | None = Field(default=None, description="The text, for text items.")
    image: str | None = Field(default=None, description="The stored image file, base64.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchMatch(BaseModel):
    """One match, in the one shape of every match: the ``retrieve`` step's, the client's,
    ``mmserve index search --json``'s."""

    id: str
    score: float = Field(description="Cosine similarity; higher is closer.")
    payload: SearchPayload


class SearchResponse(BaseModel):
    collection: str
    matches: list[SearchMatch] = Field(description="Best first.")
    request_id: str


class ItemRecord(BaseModel):
    id: str
    text: str | None = Field(default=None, description="The text, for text items.")
    has_image: bool = Field(
        description="Whether the item is an image (GET .../items/{id}/image returns it)."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class ItemPage(BaseModel):
    collection: str
    total: int = Field(description="Items in the collection.")
    offset: int
    limit: int
    items: list[ItemRecord] = Field(
        description="At most `limit` items from `offset`, in the store's order (insertion "
        "order between writes)."
    )
    request_id: str


__all__ = [
    "COLLECTION_NAME",
    "AddItemsRequest",
    "AddItemsResponse",
    "CollectionInfo",
    "CollectionList",
    "DroppedCollection",
    "ItemPage",
    "ItemRecord",
    "NewItem",
    "SearchMatch",
    "SearchPayload",
    "SearchRequest",
    "SearchResponse",
    "SpaceInfo",
]
