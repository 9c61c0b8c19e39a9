"""The ``retrieve`` step: the items of a collection closest to a text or an image query.

The query is embedded with the configured encoder whose space is the collection's space
(text-to-text, text-to-image, image-to-text and image-to-image all work when the spaces
match; a mismatch is refused naming both spaces). Matches carry the stored payload: the
text, or the image itself, so a later step can caption it or answer a question about it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field, model_validator

from mmserve.errors import InputError
from mmserve.gateway.contract import ModelGateway
from mmserve.media import ImageValue, decode_image, with_file_bytes
from mmserve.registry import register_step
from mmserve.stores.async_store import AsyncVectorStore, as_async_store, image_work
from mmserve.stores.contract import Collection, Match, Modality, VectorStore
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.collections import encoder_for, require_store
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs


class MatchPayload(StepOutputs):
    """What a match holds: its text or its image, and the metadata it was indexed with."""

    text: str | None = Field(default=None, description="The text, for text items.")
    image: ImageValue | None = Field(default=None, description="The image, for image items.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="User metadata.")


class RetrievedMatch(StepOutputs):
    """One match: its id, cosine similarity (higher is closer) and payload."""

    id: str
    score: float
    payload: MatchPayload


def check_modality(collection: Collection, modality: Modality) -> None:
    """Refuse (422, naming it) a collection that does not hold ``modality`` items."""
    if collection.modality != modality:
        raise InputError(
            f"collection {collection.name!r} holds {collection.modality} items; "
            f"this needs a collection of {modality} items",
            name="collection",
            hint=f"pick a collection of {modality}s (`GET /v1/collections` lists them)",
        )


async def search_collection(
    gateway: ModelGateway,
    store: VectorStore | AsyncVectorStore,
    collection: str,
    *,
    text: str | None = None,
    image: Any = None,
    top_k: int = 5,
    model: str | None = None,
    ctx: StepContext | None = None,
    include_images: bool = True,
    modality: Modality | None = None,
) -> list[Match]:
    """Embed a text or image query with the collection's encoder; the top_k matches.

    Image bytes are fetched from the store only with ``include_images``; ``modality``, when
    given, is what the caller needs the collection to hold (refused clearly otherwise).
    """
    store = as_async_store(store)
    target = await store.get_collection(collection)
    if modality is not None:
        check_modality(target, modality)
    if text is not None:
        encoder = await encoder_for(gateway, target, "text", model)
        called = await gateway.call(encoder, "embed_texts", text)
    else:
        encoder = await encoder_for(gateway, target, "image", model)
        called = await gateway.call(encoder, "embed_images", image)
    if ctx is not None:
        ctx.record(called)
    space = await gateway.space(encoder)
    return await store.search(
        collection, called.value, space=space, top_k=top_k, include_images=include_images
    )


def stored_image(match: Match) -> Any:
    """The decoded stored image of ``match`` (blocking: run it on the image pool); it is
    serialised as the stored file itself, never re-encoded."""
    assert match.payload.image is not None
    data = match.payload.image
    return with_file_bytes(decode_image(data, name=f"stored image {match.id}"), data)


async def to_retrieved_async(match: Match, *, include_image: bool = True) -> RetrievedMatch:
    """:func:`to_retrieved` with the image decoded on the bounded image pool."""
    image = None
    if include_image and match.payload.image is not None:
        image = await image_work(stored_image, match)
    return _retrieved(match, image)


def to_retrieved(match: Match, *, include_image: bool = True) -> RetrievedMatch:
    image = None
    if include_image and match.payload.image is not None:
        image = stored_image(match)
    return _retrieved(match, image)


def _retrieved(match: Match, image: Any) -> RetrievedMatch:
    return RetrievedMatch(
        id=match.id,
        score=match.score,
        payload=MatchPayload(text=match.payload.text, image=image, metadata=match.payload.metadata),
    )


@register_step("retrieve")
class Retrieve(Step):
    """Find the indexed items closest to a text or an image (top_k, best first)."""

    class Inputs(StepInputs):
        collection: str = Field(description="Collection to search.")
        query: str | None = Field(default=None, min_length=1, description="A text query.")
        image: ImageValue | None = Field(default=None, description="An image query.")
        top_k: int = Field(default=5, ge=1, le=100, description="How many matches.")
        model: str | None = Field(
            default=None, description="Query encoder (config name); found from the space."
        )
        include_images: bool = Field(
            default=True, description="Return the stored images of image matches."
        )
        modality: Modality | None = Field(
            default=None,
            description="The kind of items the collection must hold (e.g. image, when a later "
            "step needs the matched image); another collection is refused naming it.",
        )

        @model_validator(mode="after")
        def _one_query(self) -> Retrieve.Inputs:
            if (self.query is None) == (self.image is None):
                raise ValueError("give exactly one of query (a text) or image")
            return self

    class Outputs(StepOutputs):
        matches: list[RetrievedMatch] = Field(description="Best first.")

    @classmethod
    async def check_ahead(cls, known: dict[str, Any], ctx: StepContext) -> None:
        """An unknown collection (or one of the wrong modality) fails before earlier steps."""
        name, modality = known.get("collection"), known.get("modality")
        if not isinstance(name, str) or ctx.store is None:
            return
        target = await require_store(ctx.store).get_collection(name)
        if modality in ("text", "image"):
            check_modality(target, modality)

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        store = require_store(ctx.store)
        matches = await search_collection(
            ctx.gateway,
            store,
            inputs.collection,
            text=inputs.query,
            image=inputs.image,
            top_k=inputs.top_k,
            model=inputs.model,
            ctx=ctx,
            include_images=inputs.include_images,
            modality=inputs.modality,
        )
        if not matches:
            raise InputError(
                f"collection {inputs.collection!r} is empty; nothing to retrieve",
                name="collection",
                hint="add items with `mmserve index add` or the index step first",
            )
        retrieved = await asyncio.gather(
            *(to_retrieved_async(m, include_image=inputs.include_images) for m in matches)
        )
        return self.Outputs(matches=list(retrieved))


__all__ = [
    "MatchPayload",
    "Retrieve",
    "RetrievedMatch",
    "search_collection",
    "stored_image",
    "to_retrieved",
    "to_retrieved_async",
]
