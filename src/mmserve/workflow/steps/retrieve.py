"""The ``retrieve`` step: the items of a collection closest to a text or an image query.

The query is embedded with the configured encoder whose space is the collection's space
(text-to-text, text-to-image, image-to-text and image-to-image all work when the spaces
match; a mismatch is refused naming both spaces). Matches carry the stored payload: the
text, or the image itself, so a later step can caption it or answer a question about it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mmserve.errors import InputError
from mmserve.gateway.base import ModelGateway
from mmserve.media import ImageValue, decode_image
from mmserve.registry import register_step
from mmserve.stores.base import Match, VectorStore
from mmserve.workflow.context import StepContext
from mmserve.workflow.steps.base import Step, StepInputs, StepOutputs
from mmserve.workflow.steps.collections import blocking, encoder_for, require_store


class MatchPayload(StepOutputs):
    text: str | None = Field(default=None, description="The text, for text items.")
    image: ImageValue | None = Field(default=None, description="The image, for image items.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="User metadata.")


class RetrievedMatch(StepOutputs):
    """One match: its id, cosine similarity (higher is closer) and payload."""

    id: str
    score: float
    payload: MatchPayload


async def search_collection(
    gateway: ModelGateway,
    store: VectorStore,
    collection: str,
    *,
    text: str | None = None,
    image: Any = None,
    top_k: int = 5,
    model: str | None = None,
    ctx: StepContext | None = None,
) -> list[Match]:
    """Embed a text or image query with the collection's encoder; the top_k matches."""
    target = await blocking(store.get_collection, collection)
    if text is not None:
        encoder = await encoder_for(gateway, target, "text", model)
        called = await gateway.call(encoder, "embed_texts", text)
    else:
        encoder = await encoder_for(gateway, target, "image", model)
        called = await gateway.call(encoder, "embed_images", image)
    if ctx is not None:
        ctx.record(called)
    space = await gateway.space(encoder)
    return await blocking(store.search, collection, called.value, space=space, top_k=top_k)


def to_retrieved(match: Match, *, include_image: bool = True) -> RetrievedMatch:
    image = None
    if include_image and match.payload.image is not None:
        image = decode_image(match.payload.image, name=f"stored image {match.id}")
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

        @model_validator(mode="after")
        def _one_query(self) -> Retrieve.Inputs:
            if (self.query is None) == (self.image is None):
                raise ValueError("give exactly one of query (a text) or image")
            return self

    class Outputs(StepOutputs):
        matches: list[RetrievedMatch] = Field(description="Best first.")

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
        )
        if not matches:
            raise InputError(
                f"collection {inputs.collection!r} is empty; nothing to retrieve",
                name="collection",
                hint="add items with `mmserve index add` or the index step first",
            )
        return self.Outputs(
            matches=[to_retrieved(m, include_image=inputs.include_images) for m in matches]
        )


__all__ = ["MatchPayload", "Retrieve", "RetrievedMatch", "search_collection", "to_retrieved"]
